package entropy

// Reason says what decided a payload class: the byte statistics, or a
// container whose structure was checked in the stream's first bytes.
type Reason uint8

// Reasons, written as short machine-friendly strings by String.
const (
	ByStatistics          Reason = iota // entropy and chi-square alone
	MagicWithoutStructure               // a known magic, but the bytes after it are not that format
	GzipDecoded
	ZlibDecoded
	Bzip2Decoded
	ZstdFrame
	XzHeaders
	ZipEntry // an entry's data decodes as its method says
	ZipEncryptedEntry
	ZipAESEntry
	SevenZipHeader
	SevenZipEncryptedHeader
	PNGHeader   // the IHDR chunk holds and the first IDAT's data decodes as zlib
	JPEGMarkers // the marker segments hold and the scan's byte stuffing does
	MP4FileType
	OpenSSLSalted
	OpenPGPEncrypted
	AgeHeader
	SevenZipLZMA               // the packed data decodes as LZMA
	SevenZipLZMA2              // the packed data's LZMA2 chunks parse and decode
	SevenZipBzip2              // the packed data decodes as bzip2
	SevenZipDeflate            // the packed data decodes as deflate
	SevenZipPPMd               // the packed data starts as a PPMd range coder does
	SevenZipPackedUnstructured // a valid 7z whose packed data no coder explains: the statistics decide
	PayloadByStatistics        // a container's headers hold, its data is stored or past the prefix: the statistics of the data decide
)

var reasonNames = [...]string{
	ByStatistics:               "statistics",
	MagicWithoutStructure:      "magic-without-structure",
	GzipDecoded:                "gzip-decoded",
	ZlibDecoded:                "zlib-decoded",
	Bzip2Decoded:               "bzip2-decoded",
	ZstdFrame:                  "zstd-frame",
	XzHeaders:                  "xz-headers",
	ZipEntry:                   "zip-entry",
	ZipEncryptedEntry:          "zip-encrypted-entry",
	ZipAESEntry:                "zip-aes-entry",
	SevenZipHeader:             "7z-header",
	SevenZipEncryptedHeader:    "7z-encrypted-header",
	PNGHeader:                  "png-ihdr",
	JPEGMarkers:                "jpeg-markers",
	MP4FileType:                "mp4-ftyp",
	OpenSSLSalted:              "openssl-salted",
	OpenPGPEncrypted:           "openpgp-encrypted",
	AgeHeader:                  "age-header",
	SevenZipLZMA:               "7z-lzma",
	SevenZipLZMA2:              "7z-lzma2",
	SevenZipBzip2:              "7z-bzip2",
	SevenZipDeflate:            "7z-deflate",
	SevenZipPPMd:               "7z-ppmd",
	SevenZipPackedUnstructured: "7z-packed-unstructured",
	PayloadByStatistics:        "payload-by-statistics",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "statistics"
}
