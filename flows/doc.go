// Package flows turns captured frames into flow records: a decoder that fills a
// reused Packet from a frame without allocating, and a Table that keeps one
// fixed-size, pointer-free Record per connection with Zeek's conn.log
// accounting (packets, IP bytes and sequence-derived payload bytes per
// direction, history, state).
//
// Ownership: every []byte a Packet holds is borrowed from the frame passed to
// Decoder.Decode and is valid only until the next call. The Table never keeps
// payload; it copies the numbers it needs.
package flows
