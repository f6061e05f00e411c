package tracer

import (
	"errors"
	"fmt"
)

// The macOS backend (package darwin, on the cgo layer in package mach) plugs in
// here; until it lands, local targets report that they are unsupported.

func attachLocal(pid int) (Target, error) {
	return nil, fmt.Errorf("attach %d: %w (the darwin backend is not wired in yet)", pid, errors.ErrUnsupported)
}

func launchLocal(argv []string, opts LaunchOptions) (Target, error) {
	return nil, fmt.Errorf("launch: %w (the darwin backend is not wired in yet)", errors.ErrUnsupported)
}
