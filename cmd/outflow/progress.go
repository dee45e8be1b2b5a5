package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// progress shows bytes read of the total, packets per second and active flows
// on a terminal; replay shows nothing when stderr is not one.
type progress struct {
	bar   *progressbar.ProgressBar
	total int64
}

func newProgress(w io.Writer) *progress { return &progress{bar: nil, total: -1} }

func (p *progress) update(done, total int64, packets uint64, active int) {
	if p.bar == nil {
		p.total = total
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100e6),
			progressbar.OptionClearOnFinish(),
		)
	}
	p.bar.Describe(fmt.Sprintf("%d pkts, %d flows", packets, active))
	_ = p.bar.Set64(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
