//go:build !unix

package testvm

import (
	"errors"
	"fmt"
	"runtime"
)

// Freeze would stop the QEMU process; it needs SIGSTOP.
func (vm *VM) Freeze() error {
	return fmt.Errorf("testvm: freeze: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

// Thaw would resume a frozen QEMU process.
func (vm *VM) Thaw() error {
	return fmt.Errorf("testvm: thaw: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
