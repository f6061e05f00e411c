package darwin

import (
	"github.com/machtrace/machtrace/mach"
)

// kernel is everything a Task asks of macOS: the Mach calls of package mach
// and a few BSD facts. machKernel is the real one; tests substitute a fake
// Mach kernel, which is how the Task logic is exercised on Linux.
type kernel interface {
	taskForPid(pid int) (mach.Task, error)
	pidForTask(t mach.Task) (int, error)
	suspend2(t mach.Task) (mach.SuspensionToken, error)
	resume2(tok mach.SuspensionToken) error
	resume(t mach.Task) error
	threads(t mach.Task) ([]mach.Thread, error)
	deallocate(p mach.Port) error
	getState(th mach.Thread, s mach.State) error
	setState(th mach.Thread, s mach.State) error
	threadInfo(th mach.Thread, info mach.ThreadInfoData) error
	readMem(t mach.Task, addr uint64, p []byte) (int, error)
	writeMem(t mach.Task, addr uint64, p []byte) error
	protect(t mach.Task, addr, size uint64, setMax bool, prot mach.VMProt) error
	region(t mach.Task, addr uint64) (mach.Region, error)
	dyldInfo(t mach.Task) (mach.TaskDyldInfo, error)
	csFlags(pid int) (mach.CSFlags, error)
	spawn(a *mach.SpawnAttr) (int, error)

	// BSD side.
	processExists(pid int) bool // kill(pid, 0) did not fail with ESRCH
	processInfo(pid int) (procInfo, error)
	euid() int
	vaBits() uint // sysctl machdep.virtual_address_size, 0 if unknown
	pageSize() uint64
	entitled() Tristate // does this binary carry com.apple.security.cs.debugger
	wait(pid int) (int, error)
	kill(pid int) error
}

// procInfo is what sysctl kern.proc.pid says about a process.
type procInfo struct {
	Name       string
	UID        int
	Translated bool // P_TRANSLATED: x86_64 under Rosetta
}

// machKernel is the real kernel: package mach for Mach calls and the
// per-OS sys* functions (sys_darwin.go, sys_other.go) for the rest.
type machKernel struct{}

func (machKernel) taskForPid(pid int) (mach.Task, error)              { return mach.TaskForPid(pid) }
func (machKernel) pidForTask(t mach.Task) (int, error)                { return mach.PidForTask(t) }
func (machKernel) suspend2(t mach.Task) (mach.SuspensionToken, error) { return mach.TaskSuspend2(t) }
func (machKernel) resume2(tok mach.SuspensionToken) error             { return mach.TaskResume2(tok) }
func (machKernel) resume(t mach.Task) error                           { return mach.TaskResume(t) }
func (machKernel) threads(t mach.Task) ([]mach.Thread, error)         { return mach.TaskThreads(t) }
func (machKernel) deallocate(p mach.Port) error                       { return mach.PortDeallocate(p) }
func (machKernel) getState(th mach.Thread, s mach.State) error        { return mach.ThreadGetState(th, s) }
func (machKernel) setState(th mach.Thread, s mach.State) error        { return mach.ThreadSetState(th, s) }
func (machKernel) threadInfo(th mach.Thread, i mach.ThreadInfoData) error {
	return mach.ThreadInfo(th, i)
}
func (machKernel) readMem(t mach.Task, addr uint64, p []byte) (int, error) {
	return mach.VMReadOverwrite(t, addr, p)
}
func (machKernel) writeMem(t mach.Task, addr uint64, p []byte) error { return mach.VMWrite(t, addr, p) }
func (machKernel) protect(t mach.Task, addr, size uint64, setMax bool, prot mach.VMProt) error {
	return mach.VMProtect(t, addr, size, setMax, prot)
}
func (machKernel) region(t mach.Task, addr uint64) (mach.Region, error) {
	return mach.VMRegion(t, addr)
}
func (machKernel) dyldInfo(t mach.Task) (mach.TaskDyldInfo, error) { return mach.TaskInfoDyld(t) }
func (machKernel) csFlags(pid int) (mach.CSFlags, error)           { return mach.CsopsStatus(pid) }
func (machKernel) spawn(a *mach.SpawnAttr) (int, error)            { return mach.PosixSpawn(a) }
func (machKernel) processExists(pid int) bool                      { return sysProcessExists(pid) }
func (machKernel) processInfo(pid int) (procInfo, error)           { return sysProcessInfo(pid) }
func (machKernel) euid() int                                       { return sysEuid() }
func (machKernel) vaBits() uint                                    { return sysVABits() }
func (machKernel) pageSize() uint64                                { return sysPageSize() }
func (machKernel) entitled() Tristate                              { return sysEntitled() }
func (machKernel) wait(pid int) (int, error)                       { return sysWait(pid) }
func (machKernel) kill(pid int) error                              { return sysKill(pid) }
