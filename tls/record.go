package tls

// Record content types.
const (
	ContentChangeCipherSpec = 20
	ContentAlert            = 21
	ContentHandshake        = 22
	ContentApplicationData  = 23
	ContentHeartbeat        = 24
)

// RecordHeaderLen is the size of a TLS record header.
const RecordHeaderLen = 5

// maxRecord is the largest record payload TLS allows (2^14 plus the
// expansion a cipher may add), used to tell records from other bytes.
const maxRecord = 1<<14 + 2048

// LooksLikeHandshake reports whether b starts with a TLS handshake record
// carrying the given handshake type (1 ClientHello, 2 ServerHello): the test
// used to find TLS at the start of a stream or after a STARTTLS preamble.
func LooksLikeHandshake(b []byte, hsType uint8) bool {
	if len(b) < RecordHeaderLen+1 || b[0] != ContentHandshake || b[1] != 3 || b[2] > 4 {
		return false
	}
	n := int(b[3])<<8 | int(b[4])
	return n >= 4 && n <= maxRecord && b[5] == hsType
}

// Status says how far FirstHandshake got.
type Status uint8

// FirstHandshake outcomes.
const (
	NeedMore Status = iota // the message is not complete yet
	Complete               // msg holds the whole message
	NotTLS                 // the bytes are not TLS handshake records
	Failed                 // the records are malformed or the message too large
)

// FirstHandshake finds the first handshake message in stream, which must
// start at a record boundary. A message inside one record is returned as a
// slice of stream; one split over several records (as long post-quantum
// hellos can be) is gathered into scratch, whose capacity bounds it.
// consumed is where the records holding the message end.
func FirstHandshake(stream, scratch []byte) (msg []byte, consumed int, st Status, err error) {
	off := 0
	gathered := scratch[:0]
	for {
		if len(stream)-off < RecordHeaderLen {
			return nil, 0, NeedMore, nil
		}
		h := stream[off : off+RecordHeaderLen]
		n := int(h[3])<<8 | int(h[4])
		if h[0] != ContentHandshake || h[1] != 3 || n > maxRecord {
			if off == 0 {
				return nil, 0, NotTLS, nil
			}
			return nil, 0, Failed, &Error{Reason: ReasonMalformed, Offset: off, Field: "record header"}
		}
		if n == 0 {
			return nil, 0, Failed, &Error{Reason: ReasonMalformed, Offset: off, Field: "empty handshake record"}
		}
		end := off + RecordHeaderLen + n
		if end > len(stream) {
			// A message can complete before its record does only if the
			// record is cut short; wait for the rest of the record.
			return nil, 0, NeedMore, nil
		}
		frag := stream[off+RecordHeaderLen : end]
		if off == 0 && len(frag) >= 4 {
			if need := 4 + (int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])); need <= len(frag) {
				return frag[:need], end, Complete, nil
			}
		}
		if len(gathered)+len(frag) > cap(scratch) {
			return nil, 0, Failed, &Error{Reason: ReasonTooLarge, Offset: off, Field: "handshake message"}
		}
		gathered = append(gathered, frag...)
		if len(gathered) >= 4 {
			need := 4 + (int(gathered[1])<<16 | int(gathered[2])<<8 | int(gathered[3]))
			if need > cap(scratch) {
				return nil, 0, Failed, &Error{Reason: ReasonTooLarge, Offset: off, Field: "handshake message"}
			}
			if need <= len(gathered) {
				return gathered[:need], end, Complete, nil
			}
		}
		off = end
	}
}
