package darwin

import (
	"errors"

	"github.com/machtrace/machtrace/mach"
)

// Errors of the backend. Calls wrap them with context (and the Mach code
// that caused them), so match them with errors.Is. The tracer adapter maps
// them onto package tracer's sentinels of the same names.
var (
	// ErrNoProcess: no process has the pid.
	ErrNoProcess = errors.New("no such process")
	// ErrPermission: macOS refused the tracer control of the target; the
	// error's text says which rule and how to fix it.
	ErrPermission = errors.New("permission denied")
	// ErrExited: the task is gone.
	ErrExited = errors.New("target exited")
	// ErrNoThread: no live thread has the id.
	ErrNoThread = errors.New("no such thread")
	// ErrUnmapped: a memory access touched an unmapped address.
	ErrUnmapped = mach.ErrUnmapped
	// ErrPlatformBinary: the target is an Apple platform binary, whose
	// thread state must not be set (the kernel answers with a fatal guard
	// exception against the tracer on macOS 14.4 and later).
	ErrPlatformBinary = errors.New("target is an Apple platform binary")
	// ErrNotSuspended: Resume without a matching Suspend.
	ErrNotSuspended = errors.New("task is not suspended by this tracer")
	// ErrDetached: the Task was detached.
	ErrDetached = errors.New("task detached")
)

// Tristate is a yes/no answer that may be unknown.
type Tristate int8

// Tristate values.
const (
	Unknown Tristate = iota
	No
	Yes
)

// String returns "yes", "no" or "unknown".
func (t Tristate) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// Of converts a bool.
func Of(b bool) Tristate {
	if b {
		return Yes
	}
	return No
}
