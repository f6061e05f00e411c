// Package mach is machtrace's thin layer over the Mach kernel interfaces of
// macOS, and the home of the portable Mach types that other packages share.
//
// It has two halves:
//
//   - Portable types, compiled on every platform: thread-state flavor numbers
//     and their COUNT values, Go structs with the exact memory layouts of the
//     x86_64 and arm64 thread states (x86_THREAD_STATE64, ARM_NEON_STATE64,
//     ...), thread_info and region structures, code-signing flags, and
//     KernReturn, a kern_return_t that is a Go error carrying Apple's
//     mach_error_string text. The KDP client reuses the state structs, since
//     KDP READREGS returns these same layouts; every state struct has
//     little-endian MarshalBinary and UnmarshalBinary methods and a table of
//     named register fields.
//
//   - Calls (files built with "darwin && cgo"): one Go function per Mach
//     routine (TaskForPid wraps task_for_pid, ThreadGetState wraps
//     thread_get_state, ...), 1:1 and without policy. No C type appears in an
//     exported signature. Elsewhere, and on darwin without cgo, the same
//     functions exist and return an error that wraps errors.ErrUnsupported
//     and says why ("built without cgo").
//
// This is the only package in the module that may import "C"; a test walks the
// module's syntax trees to enforce it.
//
// Ownership of port rights follows Mach: a Task or Thread returned by a call
// is a send right the caller owns and must release with PortDeallocate. A
// SuspensionToken is a send-once right that TaskResume2 consumes; never
// deallocate it.
package mach
