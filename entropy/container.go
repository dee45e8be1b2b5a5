package entropy

import (
	"bytes"
	"compress/gzip"
	"io"
)

// Verdict is what a container check found in a stream's first bytes.
// Reason ByStatistics means no known container starts there; Class Unknown
// with another reason means a magic whose structure did not hold, or (for
// SevenZipPackedUnstructured and PayloadByStatistics) a container whose
// contents the statistics must judge.
type Verdict struct {
	Class  Class
	Reason Reason
	// Header is how many of the first bytes are the container's own
	// headers, names and zeros. When Class is Unknown the statistics judge
	// only what follows them: a long genuine header must not pull a cipher
	// stream behind it toward "compressed" (issue 15).
	Header int
}

// Examiner checks containers. It holds decoders reused from one stream to
// the next, so one per worker keeps the check free of allocations; the zero
// value is ready, and it is not safe for concurrent use.
type Examiner struct {
	src   bytes.Reader
	gz    *gzip.Reader
	fl    io.ReadCloser // a flate reader, reset through flate.Resetter
	inner bytes.Reader
	zl    io.ReadCloser // a zlib reader, reset through zlib.Resetter
	out   [4096]byte
	jp    jpegInfo // the tables of the JPEG being walked
}

// maxInflate bounds the bytes decompressed from one prefix: a kilobyte of
// deflate can expand a thousandfold, and what decoded so far is proof enough.
const maxInflate = 64 << 10

var (
	magicGzip     = []byte{0x1f, 0x8b}
	magicZip      = []byte("PK\x03\x04")
	magicZstd     = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz       = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magic7z       = []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}
	magicBzip2    = []byte("BZh")
	magicPNG      = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}
	magicJPEG     = []byte{0xff, 0xd8, 0xff}
	magicOpenSSL  = []byte("Salted__")
	magicAge      = []byte("age-encryption.org/v1\n")
	magicAgeStart = []byte("age-encr")
)

// mayBeContainer says whether a stream's first eight bytes start a format
// Examine knows, so that its prefix is worth keeping.
func mayBeContainer(h *[8]byte) bool {
	b := h[:]
	switch {
	case bytes.HasPrefix(b, magicGzip), bytes.HasPrefix(b, magicZip), bytes.HasPrefix(b, magicZstd),
		bytes.HasPrefix(b, magicXz), bytes.HasPrefix(b, magic7z), bytes.HasPrefix(b, magicBzip2),
		bytes.HasPrefix(b, magicPNG), bytes.HasPrefix(b, magicJPEG), bytes.HasPrefix(b, magicOpenSSL),
		bytes.HasPrefix(b, magicAgeStart), string(b[4:8]) == "ftyp":
		return true
	}
	return zlibHeader(b) || openPGPStart(b[0])
}

// Examine checks the container that p, a stream's first bytes, starts
// with. p is only read.
func (x *Examiner) Examine(p []byte) Verdict {
	switch {
	case bytes.HasPrefix(p, magicGzip):
		ok, n := x.gzip(p)
		return x.verdict(ok, Compressed, GzipDecoded, n)
	case bytes.HasPrefix(p, magicZip):
		return x.zip(p)
	case bytes.HasPrefix(p, magicZstd):
		ok, n := zstdFrame(p)
		return x.verdict(ok, Compressed, ZstdFrame, n)
	case bytes.HasPrefix(p, magicXz):
		ok, n := xzHeaders(p)
		return x.verdict(ok, Compressed, XzHeaders, n)
	case bytes.HasPrefix(p, magic7z):
		return x.sevenZip(p)
	case bytes.HasPrefix(p, magicBzip2):
		return x.verdict(x.bzip2(p), Compressed, Bzip2Decoded, min(len(p), 4))
	case bytes.HasPrefix(p, magicPNG):
		return x.png(p)
	case bytes.HasPrefix(p, magicJPEG):
		return x.jpeg(p)
	case bytes.HasPrefix(p, magicOpenSSL):
		return x.verdict(len(p) >= 32, Encrypted, OpenSSLSalted, len(magicOpenSSL))
	case bytes.HasPrefix(p, magicAgeStart):
		return x.verdict(ageHeader(p), Encrypted, AgeHeader, len(magicAgeStart))
	case len(p) >= 8 && string(p[4:8]) == "ftyp":
		return x.verdict(mp4FileType(p), Compressed, MP4FileType, 8)
	case len(p) >= 2 && zlibHeader(p):
		if x.zlib(p) {
			return Verdict{Compressed, ZlibDecoded, 2}
		}
		// Two bytes are a weak magic: many streams start so by chance.
		if p[0] != 0x78 {
			return Verdict{}
		}
		return Verdict{Unknown, MagicWithoutStructure, 2}
	case len(p) > 0 && openPGPStart(p[0]):
		if openPGPEncrypted(p) {
			return Verdict{Encrypted, OpenPGPEncrypted, 0}
		}
		return Verdict{} // one byte is no magic
	}
	return Verdict{}
}

// verdict is the class and reason when ok, and otherwise a magic whose
// structure did not hold after the header's first n bytes.
func (x *Examiner) verdict(ok bool, c Class, r Reason, n int) Verdict {
	if ok {
		return Verdict{c, r, n}
	}
	return Verdict{Unknown, MagicWithoutStructure, n}
}
