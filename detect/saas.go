package detect

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// SaaSConfig is AN1514: per account, upload and copy API calls.
type SaaSConfig struct {
	Enabled              bool             `yaml:"Enabled"`
	APICallThreshold     int              `yaml:"APICallThreshold"`
	TimeWindow           Duration         `yaml:"TimeWindow"`
	Operations           []string         `yaml:"Operations"`
	UserBaselineProfiles BaselineProfiles `yaml:"UserBaselineProfiles"`
}

// BaselineProfiles says how far above its usual rate an account must be:
// a multiple of its learnt mean per window, or a fixed profile per account.
type BaselineProfiles struct {
	Multiplier float64        `yaml:"Multiplier"`
	Accounts   map[string]int `yaml:"Accounts"` // account -> calls per window it is known to make
}

// saasCalls is AN1514 (T1567, DET0548, SaaS): per account, upload and
// copy calls (Operations) in the cloud service's audit log above
// APICallThreshold within TimeWindow and above the account's usual rate
// times UserBaselineProfiles.Multiplier: the rate learnt over the
// training period, or the one UserBaselineProfiles.Accounts gives.
func saasCalls(e *Engine, ev *feed.Event) {
	c := &e.cfg.AN1514
	if !contains(c.Operations, ev.Action) || ev.User == "" {
		return
	}
	user := strings.ToLower(ev.User)
	span := c.TimeWindow.D()
	key := "an1514|" + user
	w := e.addWindow(key, span, ev.Time, uint64(max(ev.Bytes, 0)), 0, CommunityID{})
	mean := e.learnRate(user, ev.Time, span)
	profile, fixed := c.UserBaselineProfiles.Accounts[user]
	base := mean
	if fixed {
		base = float64(profile)
	}
	if int(w.flows) <= c.APICallThreshold || float64(w.flows) <= base*c.UserBaselineProfiles.Multiplier {
		return
	}
	if !fixed && !e.active() {
		return // no baseline yet to be above
	}
	e.resetWindow(key)
	a := &Alert{TS: ev.Time, Analytic: "AN1514", Technique: "T1567.002", Severity: High, Confidence: "medium",
		Host:     &AlertHost{User: user},
		Evidence: Evidence{Measured: map[string]any{}, Thresholds: map[string]any{}, Baseline: map[string]any{}},
	}
	if ev.Src.IsValid() {
		a.Host.IP = ev.Src.String()
	}
	svc := ev.Feed
	if u, err := url.Parse(ev.Target); err == nil && u.Host != "" {
		a.Destination = &Destination{Name: u.Host, Service: svc}
	}
	a.Title = fmt.Sprintf("%s made %d file upload/copy calls within %v, %.1f times the usual %.1f", user, w.flows, c.TimeWindow,
		float64(w.flows)/max(base, 1), base)
	a.Evidence.Measured["calls"], a.Evidence.Measured["bytes"] = w.flows, w.out
	a.Evidence.Measured["window_start"] = w.start.UTC()
	a.Evidence.Thresholds["APICallThreshold"] = c.APICallThreshold
	a.Evidence.Thresholds["Multiplier"] = c.UserBaselineProfiles.Multiplier
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.Evidence.Baseline["calls_per_window"] = round3(base)
	a.Evidence.Baseline["fixed_profile"] = fixed
	a.DedupKey = "AN1514|" + user
	e.emit(a)
}

// learnRate counts an account's calls since it was first seen, within
// the training period, and returns its mean per window.
func (e *Engine) learnRate(user string, t time.Time, span time.Duration) float64 {
	key := "an1514|rate|" + user
	first, n := t, uint64(0)
	if b, ok := e.st.get(key, t); ok {
		r := reader{b: b}
		f, c := r.i64(), r.u64()
		if r.err == nil {
			first, n = time.Unix(0, f), c
		}
	}
	period := e.cfg.Baseline.TrainingPeriod.D()
	if t.Sub(first) > period {
		// Keep the rate, halve the memory: the older half ages out.
		n /= 2
		first = t.Add(-period / 2)
	}
	windows := max(float64(t.Sub(first))/float64(span), 1)
	mean := float64(n) / windows
	n++
	e.st.set(key, t.Add(period), e.rec().i64(first.UnixNano()).u64(n).b)
	return mean
}
