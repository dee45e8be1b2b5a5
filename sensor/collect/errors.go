package collect

import (
	"errors"
	"fmt"
	"net/netip"
)

// Reason says why a datagram or a set was not decoded.
type Reason uint8

// Reasons, counted per exporter.
const (
	ReasonNone          Reason = iota
	ReasonGarbage              // not a NetFlow, IPFIX or sFlow datagram
	ReasonTruncated            // a header or set runs past the datagram
	ReasonMalformed            // goflow2 refused a set or record
	ReasonNoTemplate           // data for a template never seen, dropped when the hold was full
	ReasonTemplateFlood        // more templates than an exporter may hold
	ReasonPanic                // the decoder panicked; recovered
	// ReasonTemplateBudget: a template refused because the exporter's
	// templates, or every exporter's state, would pass its byte budget.
	ReasonTemplateBudget
	// ReasonHeldBudget: a held data set dropped (the exporter's oldest)
	// or refused to keep held data within its byte budget.
	ReasonHeldBudget
	numReasons
)

var reasonNames = [...]string{"", "garbage", "truncated", "malformed", "no_template", "template_flood", "panic", "template_budget", "held_budget"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of Reason values.
const NumReasons = int(numReasons)

// Error is a datagram that could not be decoded in full.
type Error struct {
	Exporter netip.Addr
	Reason   Reason
	Err      error
	Stack    []byte // ReasonPanic: where it panicked, for a bug report
}

func (e *Error) Error() string {
	return fmt.Sprintf("collect: exporter %s: %s: %v", e.Exporter, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errTemplateFlood and errTemplateBudget come back through goflow2 from
// the bounded template store, so that Decode counts them by their reason,
// not as malformed; errShort reports a datagram shorter than a header.
var (
	errTemplateFlood  = errors.New("too many templates")
	errTemplateBudget = errors.New("over the template byte budget")
	errShort          = errors.New("short")
)
