// Package shared locates the third-party test data that lives beside the
// repository in ../shared/testdata. Tests read it in place, never copy it.
package shared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared test data directory: $OUTFLOW_SHARED_TESTDATA, else
// ../shared/testdata next to the repository root.
func Dir() string {
	if d := os.Getenv("OUTFLOW_SHARED_TESTDATA"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	return filepath.Join(root, "..", "shared", "testdata")
}

// Path returns the path of rel under the shared test data. When the file is
// missing the test fails in CI (CI=true) and is skipped, loudly, elsewhere.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(), rel)
	if _, err := os.Stat(p); err != nil {
		Missing(t, p, err)
	}
	return p
}

// Missing fails in CI and skips loudly elsewhere.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required test input missing: %s: %v", what, err)
	}
	t.Skipf("SKIPPED — required test input missing: %s: %v (in CI this fails)", what, err)
}
