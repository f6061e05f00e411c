//go:build !darwin || !cgo

package mach

import (
	"fmt"
	"runtime"
)

// The stubs keep the call API identical on every platform, so that packages
// above compile everywhere; each returns an error wrapping
// errors.ErrUnsupported.

func unavailable(op string) error { return unavailableOn(runtime.GOOS, op) }

// unavailableOn says why op cannot run: no cgo on darwin, no Mach elsewhere.
func unavailableOn(goos, op string) error {
	if goos == "darwin" {
		return fmt.Errorf("%s: %w", op, ErrNoCgo)
	}
	return fmt.Errorf("%s: %w", op, ErrNotDarwin)
}

// Available reports whether this build can make Mach calls.
const Available = false

// TaskSelf wraps mach_task_self(3); the stub returns MACH_PORT_NULL.
func TaskSelf() Task { return MACH_PORT_NULL }

// TaskForPid wraps task_for_pid(3).
func TaskForPid(pid int) (Task, error) { return 0, unavailable("task_for_pid") }

// TaskReadForPid wraps task_read_for_pid(2).
func TaskReadForPid(pid int) (Task, error) { return 0, unavailable("task_read_for_pid") }

// PidForTask wraps pid_for_task(3).
func PidForTask(t Task) (int, error) { return 0, unavailable("pid_for_task") }

// TaskSuspend2 wraps task_suspend2(3).
func TaskSuspend2(t Task) (SuspensionToken, error) { return 0, unavailable("task_suspend2") }

// TaskResume2 wraps task_resume2(3).
func TaskResume2(tok SuspensionToken) error { return unavailable("task_resume2") }

// TaskResume wraps task_resume(3).
func TaskResume(t Task) error { return unavailable("task_resume") }

// TaskThreads wraps task_threads(3).
func TaskThreads(t Task) ([]Thread, error) { return nil, unavailable("task_threads") }

// PortDeallocate wraps mach_port_deallocate(3) in the caller's space.
func PortDeallocate(p Port) error { return unavailable("mach_port_deallocate") }

// ThreadGetState wraps thread_get_state(3).
func ThreadGetState(th Thread, s State) error { return unavailable("thread_get_state") }

// ThreadSetState wraps thread_set_state(3).
func ThreadSetState(th Thread, s State) error { return unavailable("thread_set_state") }

// ThreadInfo wraps thread_info(3).
func ThreadInfo(th Thread, info ThreadInfoData) error { return unavailable("thread_info") }

// VMReadOverwrite wraps mach_vm_read_overwrite(3).
func VMReadOverwrite(t Task, addr uint64, p []byte) (int, error) {
	return 0, unavailable("mach_vm_read_overwrite")
}

// VMWrite wraps mach_vm_write(3).
func VMWrite(t Task, addr uint64, p []byte) error { return unavailable("mach_vm_write") }

// VMProtect wraps mach_vm_protect(3).
func VMProtect(t Task, addr, size uint64, setMaximum bool, prot VMProt) error {
	return unavailable("mach_vm_protect")
}

// VMRegion wraps mach_vm_region(3) with VM_REGION_BASIC_INFO_64.
func VMRegion(t Task, addr uint64) (Region, error) { return Region{}, unavailable("mach_vm_region") }

// VMRegionRecurse wraps mach_vm_region_recurse(3).
func VMRegionRecurse(t Task, addr uint64, depth uint32) (SubmapRegion, error) {
	return SubmapRegion{}, unavailable("mach_vm_region_recurse")
}

// TaskInfoDyld wraps task_info(3) with TASK_DYLD_INFO.
func TaskInfoDyld(t Task) (TaskDyldInfo, error) {
	return TaskDyldInfo{}, unavailable("task_info(TASK_DYLD_INFO)")
}

// CsopsStatus wraps csops(2) with CS_OPS_STATUS.
func CsopsStatus(pid int) (CSFlags, error) { return 0, unavailable("csops") }

// PosixSpawn wraps posix_spawn(2).
func PosixSpawn(a *SpawnAttr) (int, error) { return 0, unavailable("posix_spawn") }

// ErrorString wraps mach_error_string(3); the stub returns the built-in table's text.
func ErrorString(k KernReturn) string { return k.Message() }
