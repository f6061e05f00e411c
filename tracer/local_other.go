//go:build !linux && !darwin

package tracer

import (
	"errors"
	"fmt"
	"runtime"
)

func attachLocal(pid int) (Target, error) {
	return nil, fmt.Errorf("attach %d: local processes: %w on %s", pid, errors.ErrUnsupported, runtime.GOOS)
}

func launchLocal(argv []string, opts LaunchOptions) (Target, error) {
	return nil, fmt.Errorf("launch: local processes: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
