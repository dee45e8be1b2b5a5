package entropy

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need returns the path of a Debian tool, skipping the test without it
// (failing in CI, where scripts/test.sh installs it).
func need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: install the Debian package %s", tool, pkg)
	}
	t.Skipf("SKIPPED — %s is missing: apt-get install %s (in CI this fails)", tool, pkg)
	return ""
}

// sh runs a command in dir and fails the test with its output on error.
func sh(t testing.TB, dir, stdin string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// sample writes the payloads the tools work on: text that compresses,
// and an image.
func sample(t testing.TB, dir string) {
	var b strings.Builder
	for i := 0; i < 400; i++ {
		b.WriteString("row ")
		b.WriteString(strings.Repeat("quarterly figures ", i%7+1))
		b.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	small := "the key is under the mat\n"
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte(small), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toolFile is one file a real tool produced, and the class and reason the
// stream that starts with it must get.
type toolFile struct {
	name   string
	data   []byte
	class  Class
	reason Reason
}

// toolFiles runs the Debian tools in a temporary directory.
func toolFiles(t testing.TB) []toolFile {
	dir := t.TempDir()
	sample(t, dir)
	rep := filepath.Join(dir, "report.txt")
	var fs []toolFile
	add := func(name string, data []byte, c Class, r Reason) {
		fs = append(fs, toolFile{name, data, c, r})
	}
	add("gzip", sh(t, dir, "", need(t, "gzip", "gzip"), "-c", rep), Compressed, GzipDecoded)
	add("zstd", sh(t, dir, "", need(t, "zstd", "zstd"), "-q", "-c", rep), Compressed, ZstdFrame)
	add("xz", sh(t, dir, "", need(t, "xz", "xz-utils"), "-c", rep), Compressed, XzHeaders)
	add("bzip2", sh(t, dir, "", need(t, "bzip2", "bzip2"), "-c", rep), Compressed, Bzip2Decoded)
	z := need(t, "zip", "zip")
	sh(t, dir, "", z, "-q", "plain.zip", "report.txt")
	add("zip", read(t, filepath.Join(dir, "plain.zip")), Compressed, ZipEntry)
	sh(t, dir, "", z, "-q", "-P", "secret", "locked.zip", "report.txt")
	add("zip -P", read(t, filepath.Join(dir, "locked.zip")), Encrypted, ZipEncryptedEntry)
	sz := need(t, "7z", "p7zip-full")
	sh(t, dir, "", sz, "a", "-bd", "-tzip", "-psecret", "-mem=AES256", "aes.zip", "report.txt")
	add("7z zip AES", read(t, filepath.Join(dir, "aes.zip")), Encrypted, ZipAESEntry)
	sh(t, dir, "", sz, "a", "-bd", "plain.7z", "report.txt")
	add("7z", read(t, filepath.Join(dir, "plain.7z")), Compressed, SevenZipHeader)
	sh(t, dir, "", sz, "a", "-bd", "-psecret", "-mhe=on", "locked.7z", "small.txt")
	add("7z -mhe", read(t, filepath.Join(dir, "locked.7z")), Encrypted, SevenZipEncryptedHeader)
	gpg := need(t, "gpg", "gnupg")
	home := filepath.Join(dir, "gnupg")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	add("gpg --symmetric", sh(t, dir, "", gpg, "--homedir", home, "--batch", "--symmetric", "--passphrase", "x", "-o", "-", rep), Encrypted, OpenPGPEncrypted)
	sh(t, dir, "", gpg, "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", "lab@example.test", "default", "default", "never")
	add("gpg --encrypt", sh(t, dir, "", gpg, "--homedir", home, "--batch", "--trust-model", "always", "-r", "lab@example.test", "--encrypt", "-o", "-", rep), Encrypted, OpenPGPEncrypted)
	keygen := need(t, "age-keygen", "age")
	age := need(t, "age", "age")
	sh(t, dir, "", keygen, "-o", "key.txt")
	pub := strings.TrimSpace(string(sh(t, dir, "", keygen, "-y", "key.txt")))
	add("age", sh(t, dir, "", age, "-r", pub, rep), Encrypted, AgeHeader)
	add("openssl enc", sh(t, dir, "", need(t, "openssl", "openssl"), "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-pass", "pass:x", "-in", rep), Encrypted, OpenSSLSalted)
	// A real image: netpbm draws a gradient, its encoders write PNG and JPEG.
	ppm := sh(t, dir, "", need(t, "pgmramp", "netpbm"), "-lr", "64", "64")
	add("png", sh(t, dir, string(ppm), need(t, "pnmtopng", "netpbm")), Compressed, PNGHeader)
	add("jpeg", sh(t, dir, string(ppm), need(t, "cjpeg", "libjpeg-turbo-progs")), Compressed, JPEGMarkers)
	return fs
}

// TestRealContainers feeds each tool's output as a stream's first bytes.
func TestRealContainers(t *testing.T) {
	for _, f := range toolFiles(t) {
		c := counted(f.data, 4096)
		_, _, class, reason := c.Judge(nil)
		if class != f.class || reason != f.reason {
			t.Errorf("%s (%d bytes, %x...): %v/%v, want %v/%v", f.name, len(f.data), f.data[:min(16, len(f.data))], class, reason, f.class, f.reason)
		}
	}
}

// TestMagicWithoutStructure puts each compressed format's magic before
// random bytes: a cipher stream, whatever its first bytes say. Measured
// over 300,000 random tails each, the checks pass random bytes at about
// 2e-4 after the zstd magic (a block header and a literals header are all
// a cut first block shows), 7e-6 after JPEG's and never after the others,
// so one stray verdict in 50 trials is tolerated, two are a failure.
func TestMagicWithoutStructure(t *testing.T) {
	random := make([]byte, 4096)
	for _, m := range [][]byte{magicGzip, magicZip, magicZstd, magicXz, magic7z, []byte("BZh9"), magicPNG, magicJPEG, {0x78, 0x9c}, {0, 0, 0, 0x20, 'f', 't', 'y', 'p'}} {
		wrong := 0
		for trial := 0; trial < 50; trial++ {
			rand.Read(random)
			in := append(append([]byte{}, m...), random[len(m):]...)
			_, _, class, reason := counted(in, 4096).Judge(nil)
			if class != Encrypted || reason != MagicWithoutStructure {
				wrong++
				t.Logf("magic %x before random bytes: %v/%v (%x)", m, class, reason, in[:64])
			}
		}
		if wrong > 1 {
			t.Errorf("magic %x before random bytes: %d of 50 not encrypted/magic-without-structure", m, wrong)
		}
	}
}

// BenchmarkJudge is the classifier's cost per flow on a 4 KiB sample:
// random bytes (no container: statistics only), a gzip file (decoded) and a
// gzip magic before random bytes (decode fails early).
func BenchmarkJudge(b *testing.B) {
	random := make([]byte, 4096)
	rand.Read(random)
	var gz bytes.Buffer
	w, _ := gzipWriter(&gz)
	for i := 0; gz.Len() < 4096; i++ {
		w.Write([]byte("row quarterly figures attached, please review before friday\n"))
		w.Write(random[i%4000 : i%4000+8])
	}
	w.Close()
	fake := append(append([]byte{}, magicGzip...), random[2:]...)
	for _, c := range []struct {
		name string
		in   []byte
	}{{"random", random}, {"gzip", gz.Bytes()[:4096]}, {"gzip-magic-random", fake}} {
		b.Run(c.name, func(b *testing.B) {
			var x Examiner
			var cnt Counter
			b.SetBytes(4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				cnt.Reset(4096)
				cnt.Add(c.in)
				cnt.Judge(&x)
			}
		})
	}
}

func gzipWriter(w *bytes.Buffer) (*gzip.Writer, error) { return gzip.NewWriterLevel(w, gzip.BestSpeed) }
