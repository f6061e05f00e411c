//go:build !linux

package tracee

import (
	"errors"
	"fmt"
	"runtime"
)

// ThreadNamesSupported says whether setThreadName works on this OS.
const ThreadNamesSupported = false

func setThreadName(name string) error {
	return fmt.Errorf("naming threads: %w on %s without cgo", errors.ErrUnsupported, runtime.GOOS)
}
