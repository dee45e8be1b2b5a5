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
