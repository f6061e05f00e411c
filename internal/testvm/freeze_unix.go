//go:build unix

package testvm

import "syscall"

// Freeze stops the QEMU process (SIGSTOP): its stub stops answering, as a
// hung host process would. Thaw undoes it.
func (vm *VM) Freeze() error { return vm.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen QEMU process (SIGCONT).
func (vm *VM) Thaw() error { return vm.cmd.Process.Signal(syscall.SIGCONT) }
