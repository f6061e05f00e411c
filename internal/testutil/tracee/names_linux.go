package tracee

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ThreadNamesSupported says whether setThreadName works on this OS.
const ThreadNamesSupported = true

// setThreadName names the calling OS thread (PR_SET_NAME, at most 15 bytes).
func setThreadName(name string) error {
	b := append([]byte(name), 0)
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}
