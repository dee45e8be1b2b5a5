package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// progress shows bytes read of the total, packets per second and active flows
// on a terminal; replay shows nothing when stderr is not one.
type progress struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	lastPkts uint64
	lastAt   time.Time
	pps      float64
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) update(done, total int64, packets uint64, active int) {
	now := time.Now()
	if dt := now.Sub(p.lastAt).Seconds(); !p.lastAt.IsZero() && dt > 0 {
		p.pps = float64(packets-p.lastPkts) / dt
	}
	p.lastPkts, p.lastAt = packets, now
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100e6),
			progressbar.OptionClearOnFinish(),
		)
	}
	p.bar.Describe(fmt.Sprintf("%.0f pkt/s, %d active flows", p.pps, active))
	_ = p.bar.Set64(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
