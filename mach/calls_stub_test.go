//go:build !darwin || !cgo

package mach

import (
	"errors"
	"strings"
	"testing"
)

// Without cgo (or off macOS) every call fails with an error that wraps
// errors.ErrUnsupported and says why.
func TestStubsSayWhy(t *testing.T) {
	err := unavailableOn("darwin", "task_for_pid")
	if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, ErrNoCgo) || !strings.Contains(err.Error(), "built without cgo") {
		t.Errorf("darwin without cgo: %v", err)
	}
	err = unavailableOn("linux", "task_for_pid")
	if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, ErrNotDarwin) || !strings.Contains(err.Error(), "only on macOS") {
		t.Errorf("linux: %v", err)
	}
	if Available {
		t.Error("stub build claims Mach calls are available")
	}
	if _, err := TaskForPid(1); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("TaskForPid: %v", err)
	}
	if _, err := VMReadOverwrite(0, 0, make([]byte, 1)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("VMReadOverwrite: %v", err)
	}
	if ErrorString(KERN_FAILURE) != "(os/kern) failure" {
		t.Error("ErrorString falls back to the table")
	}
}
