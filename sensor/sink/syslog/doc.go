// Package syslog carries records to a syslog receiver as RFC 5424
// messages, one record each: the record's JSON line is the MSG, sent as
// it is, and MSGID says whether it is a flow or an alert.
//
//	<134>1 2026-03-01T10:00:00.123456Z sensor1 outflow 4242 flow - {"ts":...}
//
// It is a sink.Transport: it speaks the protocol and nothing more. A
// Delivery sink in front of it holds the records, calls Send, retries and
// counts; this package connects on the first Send, and again on the Send
// after a failure.
//
// # What "delivered" means
//
// Over udp (RFC 5426, one message per datagram) a record is delivered
// when the kernel took its datagram: UDP says nothing more. A datagram
// carries at most MaxDatagram (65507) bytes; a record whose message is
// longer is refused with a *sink.Rejected, never cut, since a cut JSON
// line is worse than none. Messages over the path MTU leave in IP
// fragments, and receivers need only take 2048 bytes (RFC 5426 section
// 3.2): rsyslog cuts past its maxMessageSize, 8 KiB by default. Big
// records belong on tcp or tls. A receiver that is down shows only as the
// ICMP refusal the kernel reports on a later datagram: that Send fails,
// and the datagrams before it were lost.
//
// Over tcp (RFC 6587 octet counting, "LEN SP MSG") and tls (RFC 5425, the
// same framing in TLS) a record is delivered when the write that held the
// end of its frame returned: our kernel has it. Frames are written 64 KiB
// at a time, and after a failed write the records of that write and after
// it are not counted, so they are sent again and none is lost on our
// side. What can still be lost is what our kernel had taken when the
// connection broke: bytes in flight, or in a dying receiver's socket. To
// keep that small, a Send first looks at the socket, without blocking,
// for the FIN or RST of a receiver that went away since the last Send (a
// restart, most often), and connects again before writing, instead of
// writing into a dead connection whose first write would succeed; and a
// new connection waits as long as its set-up took (50 ms at least, 1 s at
// most) before its first write, for a receiver that refuses it once
// accepted, as rsyslog does a client without the certificate it wants:
// without that wait, every Send would write into a connection about to
// be closed, and count records the receiver threw away. Loss
// beyond that needs acknowledgements syslog over TCP does not have (RELP
// has them). In the other direction a receiver may see a record twice,
// when a write failed after part of it had left: an alert's id, or a flow
// record's community_id with its ts and end_ts, tells the copies apart.
//
// # Timeouts
//
// Send's context bounds the connection's set-up and every write; so do
// Config's DialTimeout and WriteTimeout. When the context ends, a blocked
// write returns at once.
package syslog
