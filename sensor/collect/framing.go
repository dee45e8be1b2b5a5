package collect

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// sflowCounts checks the record counts of an sFlow v5 datagram's samples
// against the bytes that could hold them. goflow2 v2.2.6 allocates an
// expanded flow sample's records by the count the datagram claims, with no
// bound: a forged count of 2^32-1 asks for tens of gigabytes.
func sflowCounts(b []byte) error {
	be := binary.BigEndian
	if len(b) < 8 {
		return errShort
	}
	off := 8 // version, address type, then the address
	switch be.Uint32(b[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return fmt.Errorf("sFlow agent address type %d", be.Uint32(b[4:]))
	}
	off += 12 // sub-agent, sequence, uptime
	if len(b) < off+4 {
		return errShort
	}
	n := int(be.Uint32(b[off:]))
	off += 4
	for i := 0; i < n && len(b)-off >= 8; i++ {
		format, length := be.Uint32(b[off:]), int(be.Uint32(b[off+4:]))
		off += 8
		if length > len(b)-off {
			return nil // goflow2 stops at a sample that runs past the end
		}
		sample := b[off : off+length]
		off += length
		// Where each format keeps its record count (sFlow v5 sections
		// 5.1-5.3 and the drop sample of sFlow's packet-drop extension).
		var at int
		switch format {
		case 1:
			at = 28 // flow sample
		case 2:
			at = 8 // counter sample
		case 3:
			at = 40 // expanded flow sample
		case 4:
			at = 12 // expanded counter sample
		case 5:
			at = 28 // drop sample (seq, source type and index, drops, input, output, reason)
		default:
			continue
		}
		if len(sample) < at+4 {
			continue // goflow2 reports the short header
		}
		if c := int(be.Uint32(sample[at:])); c > (len(sample)-at-4)/8 {
			return fmt.Errorf("sFlow sample %d claims %d records in %d bytes", i, c, len(sample)-at-4)
		}
	}
	return nil
}

// framing checks that a NetFlow v9 or IPFIX message's sets lie within it:
// goflow2 reads a set that claims more bytes than remain as if it were
// whole.
func framing(version uint16, b []byte) error {
	hdr := 20
	end := len(b)
	if version == 10 {
		hdr = 16
		if len(b) < hdr {
			return errors.New("short IPFIX header")
		}
		if n := int(binary.BigEndian.Uint16(b[2:])); n < hdr || n > len(b) {
			return fmt.Errorf("IPFIX message length %d, datagram %d", n, len(b))
		} else {
			end = n
		}
	} else if len(b) < hdr {
		return errors.New("short NetFlow v9 header")
	}
	for off := hdr; off < end; {
		if end-off < 4 {
			if version == 9 {
				return nil // trailing padding
			}
			return fmt.Errorf("set header at offset %d cut short", off)
		}
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if n < 4 || off+n > end {
			return fmt.Errorf("set at offset %d claims %d bytes, %d remain", off, n, end-off)
		}
		off += n
	}
	return nil
}
