package tracer

import (
	"errors"
	"fmt"
)

func attachLocal(pid int) (Target, error) {
	return nil, fmt.Errorf("attach %d: %w (ptrace backend in progress)", pid, errors.ErrUnsupported)
}

func launchLocal(argv []string, opts LaunchOptions) (Target, error) {
	return nil, fmt.Errorf("launch: %w (ptrace backend in progress)", errors.ErrUnsupported)
}
