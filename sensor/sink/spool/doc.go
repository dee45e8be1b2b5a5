// Package spool is a bounded FIFO of opaque entries on disk that survives
// crashes, so that alerts are not lost while a network sink (syslog, a
// webhook, Kafka) is down or slow.
//
// A Delivery sink appends every record with Append, which returns once the
// entries are on disk. A sender takes the oldest with Peek, delivers them,
// and acknowledges them with Ack, which moves a cursor on disk. After a
// crash, even a SIGKILL or a power cut, Open resumes with the oldest entry
// not acknowledged, in order.
//
// # At least once
//
// An entry delivered but not yet acknowledged when the process dies is
// delivered again after the restart: delivery is at least once, never
// exactly once. Records carry an id (an alert's id) for receivers to drop
// the copies they already have.
//
// # Concurrency
//
// All methods are safe for concurrent use. Appenders are serialised by
// one lock and readers (Peek, Ack) by another, and neither side waits for
// the other's fsync, so a sender delivers while a slow disk syncs an
// append. A reader only sees entries whose Append has returned.
//
// # Files
//
// The spool owns its directory (mode 0700): Open refuses one holding a file
// it did not write, and takes a lock so that two processes do not share
// one. It holds:
//
//   - lock, flock'ed while the spool is open;
//   - segment files, NNNNNNNNNNNNNNNNNNNN.seg, named by their id in
//     decimal; a new one is started when the current one would pass
//     Config.SegmentBytes, and one is deleted when all its entries are
//     acknowledged;
//   - cursor, where the oldest unacknowledged entry starts, replaced by
//     writing cursor.tmp, syncing it, renaming it over cursor and syncing
//     the directory.
//
// All integers are little-endian and all checksums CRC32C (Castagnoli).
// A segment starts with a 24-byte header:
//
//	magic "OFSPOOL\x00" (8) | version 1 (2) | flags 0 (2) | segment id (8) | CRC32C of the 20 bytes before (4)
//
// followed by frames, one per entry:
//
//	payload length (4) | sequence number (8) | CRC32C of the payload (4) | CRC32C of the 16 bytes before (4) | payload
//
// Sequence numbers count entries from 1 across segments. The cursor file
// is 40 bytes:
//
//	magic "OFCURSOR" (8) | version 1 (2) | flags 0 (2) | segment id (8) | offset (8) | last acknowledged sequence number (8) | CRC32C of the 36 bytes before (4)
//
// # Damage
//
// A crash during Append leaves a torn tail at the end of the last segment:
// a frame cut short, or bytes that never reached the disk. Open cuts it off
// (it held nothing an Append had returned for) and counts its bytes.
// Damage elsewhere (bit rot, a hand on a file) is stepped over: a frame
// whose payload fails its checksum is skipped whole, since its checked
// header gives its length; after a frame header that fails its own
// checksum, the reader searches forward for the next header whose checksum
// holds and whose sequence number follows. A length is never believed
// before its header's checksum holds, nor when it passes the end of the
// segment or MaxEntryBytes. Each damaged place is counted in Stats and
// reported once through TakeDamage, with its file and offset.
//
// Memory stays bounded whatever is on disk: files are read through a
// 64 KiB window, appends written through a 256 KiB buffer, and Peek copies
// at most what it is asked for (and at least one entry).
package spool
