package sensor

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// smallDatagram is the size most exports fit: a datagram under an
// Ethernet MTU (exporters keep under it to avoid fragments).
const smallDatagram = 2048

// datagramBuffers holds the buffers of the datagrams waiting between the
// flow listeners' sockets and the decoder: small ones for what fits an
// MTU, a few of full size for the rest. A buffer of 64 KiB for every
// place in the queue held 260 MiB whatever came; these hold 12 MiB. Taking
// a buffer waits while all of its size are in the queue, as the queue
// itself does.
type datagramBuffers struct {
	small, large chan []byte
}

// The pool's sizes: a small buffer for each place of the collector's
// socket→decoder queue and a few being filled, and the large ones.
const (
	datagramQueueLen     = 4096
	smallDatagramBuffers = datagramQueueLen + 64
	largeDatagramBuffers = 64
)

func newDatagramBuffers() *datagramBuffers {
	b := &datagramBuffers{small: make(chan []byte, smallDatagramBuffers), large: make(chan []byte, largeDatagramBuffers)}
	for range cap(b.small) {
		b.small <- make([]byte, smallDatagram)
	}
	for range cap(b.large) {
		b.large <- make([]byte, maxDatagram)
	}
	return b
}

// copy returns a buffer of ours holding d.
func (b *datagramBuffers) copy(d []byte) []byte {
	var buf []byte
	if len(d) <= smallDatagram {
		buf = <-b.small
	} else {
		buf = <-b.large
	}
	return buf[:copy(buf[:cap(buf)], d)]
}

// put gives a buffer from copy back.
func (b *datagramBuffers) put(buf []byte) {
	if cap(buf) == maxDatagram {
		b.large <- buf[:cap(buf)]
		return
	}
	b.small <- buf[:cap(buf)]
}
