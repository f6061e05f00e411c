// Package ptrace is machtrace's Linux process-control layer: pure Go over
// golang.org/x/sys/unix, with no knowledge of the tracer model above it.
//
// A Process seizes every thread of a target with PTRACE_SEIZE (following new
// threads with PTRACE_O_TRACECLONE), stops them all with PTRACE_INTERRUPT and
// resumes them with PTRACE_CONT. Linux accepts ptrace requests only from the
// OS thread that attached, so each Process owns one goroutine locked to its OS
// thread; calls made elsewhere are handed to it, and Run lets a caller execute
// a whole loop on it to avoid the hand-off per call.
//
// The tracer never sets PTRACE_O_EXITKILL and never stops the target with
// SIGSTOP, so if machtrace dies the kernel detaches and the target runs on.
package ptrace
