package tracer

import (
	"io"
)

// LaunchOptions configure Launch.
type LaunchOptions struct {
	Env    []string  // environment; nil means the tracer's own
	Dir    string    // working directory; empty means the tracer's own
	Stdin  io.Reader // nil means /dev/null
	Stdout io.Writer // nil means /dev/null
	Stderr io.Writer // nil means /dev/null
}

// Process is implemented by backends whose target is a local OS process.
type Process interface {
	PID() int
}

// Waiter is implemented by backends that launched their target: Wait blocks
// until the process exits (after the tracer has detached or resumed it) and
// returns its exit status (128+signal for a signal death).
type Waiter interface {
	Wait() (int, error)
}

// PIDOf returns the OS pid of a local target, or 0.
func PIDOf(t Target) int {
	if p, ok := t.Backend().(Process); ok {
		return p.PID()
	}
	return 0
}

// Attach attaches to a running local process. On Linux it seizes every thread
// with ptrace; on macOS it takes the task port with task_for_pid.
func Attach(pid int) (Target, error) { return attachLocal(pid) }

// Launch starts argv[0] with its arguments, stopped before its first
// instruction, and returns it as a suspended target (Suspended reports true):
// call Resume to let it run.
func Launch(argv []string, opts LaunchOptions) (Target, error) { return launchLocal(argv, opts) }
