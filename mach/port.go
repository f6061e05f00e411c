package mach

import (
	"errors"
	"fmt"
)

// Port is a mach_port_name_t: a name for a right in the caller's IPC space.
type Port uint32

// Task is a send right to a task port (task_t, task_read_t).
type Task Port

// Thread is a send right to a thread port (thread_act_t, thread_read_t).
type Thread Port

// SuspensionToken is the send-once right task_suspend2 returns
// (task_suspension_token_t). TaskResume2 consumes it; if the holder dies
// instead, the kernel destroys it and releases that one suspension.
type SuspensionToken Port

// MACH_PORT_NULL is the null port name.
const MACH_PORT_NULL = 0

// Errors of the call stubs on platforms where Mach calls are unavailable.
// Both wrap errors.ErrUnsupported.
var (
	ErrNoCgo     = fmt.Errorf("machtrace was built without cgo, so it cannot call Mach (rebuild with CGO_ENABLED=1 and a C compiler): %w", errors.ErrUnsupported)
	ErrNotDarwin = fmt.Errorf("mach calls exist only on macOS: %w", errors.ErrUnsupported)
)

// SpawnAttr configures PosixSpawn.
type SpawnAttr struct {
	Path  string   // absolute or relative path of the executable (no PATH search)
	Argv  []string // argv, including argv[0]
	Env   []string // "KEY=value" entries
	Dir   string   // working directory of the child; empty keeps the caller's
	Stdio [3]int   // file descriptors to become the child's 0, 1 and 2
	Flags int      // POSIX_SPAWN_* flags, e.g. POSIX_SPAWN_START_SUSPENDED
}
