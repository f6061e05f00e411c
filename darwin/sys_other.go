//go:build !darwin

package darwin

import (
	"errors"
	"fmt"
	"runtime"
)

// On other systems the BSD side answers "unsupported"; Mach calls fail the
// same way in package mach, so Attach and Launch report it clearly.

func errNotDarwin(op string) error {
	return fmt.Errorf("%s: the macOS backend runs only on macOS, not %s: %w", op, runtime.GOOS, errors.ErrUnsupported)
}

func sysProcessExists(pid int) bool            { return false }
func sysProcessInfo(pid int) (procInfo, error) { return procInfo{}, errNotDarwin("process info") }
func sysEuid() int                             { return -1 }
func sysVABits() uint                          { return 0 }
func sysPageSize() uint64                      { return 4096 }
func sysEntitled() Tristate                    { return Unknown }
func sysWait(pid int) (int, error)             { return 0, errNotDarwin("wait") }
func sysKill(pid int) error                    { return errNotDarwin("kill") }
func Entitlements(path string) ([]byte, error) { return nil, errNotDarwin("codesign") }
