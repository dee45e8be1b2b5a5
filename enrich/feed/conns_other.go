//go:build !linux

package feed

// pendingBytes is unknown off Linux: a connection is judged by its reads.
func pendingBytes(uintptr) int { return 0 }
