// Package collect turns flow exports from routers (NetFlow v5 and v9, IPFIX,
// sFlow v5) into flow records. The wire formats, templates and options are
// decoded by github.com/netsampler/goflow2/v2; this package keeps template
// state per exporter within bounds, holds data sets that arrive before their
// template, applies sampling rates, and normalises each exported record to
// one Record with the counters Outflow needs.
package collect
