package synth

import "encoding/binary"

// PcapngInterfaceFlood is a little-endian pcapng section of n interface
// description blocks and nothing else: issue 16's row 12, which held
// gigabytes in pcapgo before the reader bounded a section's interfaces.
// For hostile-input tests and the soak (scripts/soak).
func PcapngInterfaceFlood(n int) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, 28+20*n)
	b = le.AppendUint32(b, 0x0A0D0D0A) // section header
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 0x1A2B3C4D)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 28)
	for range n { // interface description: Ethernet, snap length 0
		b = le.AppendUint32(b, 1)
		b = le.AppendUint32(b, 20)
		b = le.AppendUint16(b, 1)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, 20)
	}
	return b
}

// IPFIXTemplate is an IPFIX message of observation domain obs holding one
// template set: template id of n enterprise fields (PEN 32473, the
// documentation number) of 4 bytes each. Many large ones from many
// exporters are issue 16's row 8, which held gigabytes while only
// templates were counted, not their bytes. For the template-flood test and
// the soak.
func IPFIXTemplate(obs, seq, exportTime uint32, id uint16, n int) []byte {
	be := binary.BigEndian
	b := make([]byte, 16, 16+4+4+8*n)
	be.PutUint16(b, 10)
	be.PutUint32(b[4:], exportTime)
	be.PutUint32(b[8:], seq)
	be.PutUint32(b[12:], obs)
	b = be.AppendUint16(b, 2) // template set
	b = be.AppendUint16(b, uint16(4+4+8*n))
	b = be.AppendUint16(b, id)
	b = be.AppendUint16(b, uint16(n))
	for i := range n {
		b = be.AppendUint16(b, 0x8000|uint16(1+i))
		b = be.AppendUint16(b, 4)
		b = be.AppendUint32(b, 32473)
	}
	be.PutUint16(b[2:], uint16(len(b)))
	return b
}
