//go:build cgo

package mach

/*
#include <stdlib.h>
#include "shim_darwin.h"
*/
import "C"

import (
	"os"
	"syscall"
	"unsafe"
)

// Each function below is one Mach or BSD call through its shim in
// shim_darwin.c. They translate types and codes and nothing else.

// Available reports whether this build can make Mach calls.
const Available = true

func kr(op string, k C.kern_return_t) error { return kernErr(op, int32(k)) }

// TaskSelf wraps mach_task_self(3).
func TaskSelf() Task { return Task(C.mt_task_self()) }

// TaskForPid wraps task_for_pid(3). A nil error with MACH_PORT_NULL means the
// process exists but has no task (it is exiting).
func TaskForPid(pid int) (Task, error) {
	var t C.uint32_t
	err := kr("task_for_pid", C.mt_task_for_pid(C.int(pid), &t))
	return Task(t), err
}

// TaskReadForPid wraps task_read_for_pid(2), a BSD call that fails with errno.
func TaskReadForPid(pid int) (Task, error) {
	var t C.uint32_t
	if r, err := C.mt_task_read_for_pid(C.int(pid), &t); r != 0 {
		return 0, os.NewSyscallError("task_read_for_pid", err)
	}
	return Task(t), nil
}

// PidForTask wraps pid_for_task(3).
func PidForTask(t Task) (int, error) {
	var pid C.int
	err := kr("pid_for_task", C.mt_pid_for_task(C.uint32_t(t), &pid))
	return int(pid), err
}

// TaskSuspend2 wraps task_suspend2(3).
func TaskSuspend2(t Task) (SuspensionToken, error) {
	var tok C.uint32_t
	err := kr("task_suspend2", C.mt_task_suspend2(C.uint32_t(t), &tok))
	return SuspensionToken(tok), err
}

// TaskResume2 wraps task_resume2(3); it consumes the token.
func TaskResume2(tok SuspensionToken) error {
	return kr("task_resume2", C.mt_task_resume2(C.uint32_t(tok)))
}

// TaskResume wraps task_resume(3). machtrace uses it only to release the
// hold a POSIX_SPAWN_START_SUSPENDED launch leaves, which no token names.
func TaskResume(t Task) error { return kr("task_resume", C.mt_task_resume(C.uint32_t(t))) }

// TaskThreads wraps task_threads(3). The out-of-line array is freed here; the
// thread send rights are returned to the caller, who must release every one
// it does not keep with PortDeallocate.
func TaskThreads(t Task) ([]Thread, error) {
	var list *C.uint32_t
	var n C.uint32_t
	if err := kr("task_threads", C.mt_task_threads(C.uint32_t(t), &list, &n)); err != nil {
		return nil, err
	}
	defer C.mt_thread_list_free(list, n)
	if n == 0 || list == nil {
		return nil, nil
	}
	out := make([]Thread, n)
	for i, th := range unsafe.Slice(list, int(n)) {
		out[i] = Thread(th)
	}
	return out, nil
}

// PortDeallocate wraps mach_port_deallocate(3) in the caller's space.
func PortDeallocate(p Port) error {
	return kr("mach_port_deallocate", C.mt_port_deallocate(C.uint32_t(p)))
}

// ThreadGetState wraps thread_get_state(3), filling s in place.
func ThreadGetState(th Thread, s State) error {
	n := C.uint32_t(s.Count())
	return kr("thread_get_state", C.mt_thread_get_state(C.uint32_t(th), C.int(s.Flavor()), s.ptr(), &n))
}

// ThreadSetState wraps thread_set_state(3) with the flavor's exact count.
func ThreadSetState(th Thread, s State) error {
	return kr("thread_set_state", C.mt_thread_set_state(C.uint32_t(th), C.int(s.Flavor()), s.ptr(), C.uint32_t(s.Count())))
}

// ThreadInfo wraps thread_info(3), filling info in place.
func ThreadInfo(th Thread, info ThreadInfoData) error {
	n := C.uint32_t(info.Count())
	return kr("thread_info", C.mt_thread_info(C.uint32_t(th), C.int(info.InfoFlavor()), info.ptr(), &n))
}

// VMReadOverwrite wraps mach_vm_read_overwrite(3). The read is all or
// nothing: any unmapped page in the range fails the whole call.
func VMReadOverwrite(t Task, addr uint64, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var out C.uint64_t
	err := kr("mach_vm_read_overwrite", C.mt_vm_read_overwrite(C.uint32_t(t), C.uint64_t(addr), C.uint64_t(len(p)), unsafe.Pointer(&p[0]), &out))
	return int(out), err
}

// VMWrite wraps mach_vm_write(3).
func VMWrite(t Task, addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return kr("mach_vm_write", C.mt_vm_write(C.uint32_t(t), C.uint64_t(addr), unsafe.Pointer(&p[0]), C.uint32_t(len(p))))
}

// VMProtect wraps mach_vm_protect(3).
func VMProtect(t Task, addr, size uint64, setMaximum bool, prot VMProt) error {
	set := C.int(0)
	if setMaximum {
		set = 1
	}
	return kr("mach_vm_protect", C.mt_vm_protect(C.uint32_t(t), C.uint64_t(addr), C.uint64_t(size), set, C.int(prot)))
}

// VMRegion wraps mach_vm_region(3) with VM_REGION_BASIC_INFO_64: the region
// at or after addr.
func VMRegion(t Task, addr uint64) (Region, error) {
	var info [VM_REGION_BASIC_INFO_COUNT_64]uint32
	a, s := C.uint64_t(addr), C.uint64_t(0)
	if err := kr("mach_vm_region", C.mt_vm_region(C.uint32_t(t), &a, &s, (*C.uint32_t)(unsafe.Pointer(&info[0])))); err != nil {
		return Region{}, err
	}
	bi, err := ParseRegionBasicInfo64(WordBytes(info[:]))
	return Region{Address: uint64(a), Size: uint64(s), Info: bi}, err
}

// VMRegionRecurse wraps mach_vm_region_recurse(3).
func VMRegionRecurse(t Task, addr uint64, depth uint32) (SubmapRegion, error) {
	var info [VM_REGION_SUBMAP_INFO_COUNT_64]uint32
	a, s, d := C.uint64_t(addr), C.uint64_t(0), C.uint32_t(depth)
	if err := kr("mach_vm_region_recurse", C.mt_vm_region_recurse(C.uint32_t(t), &a, &s, &d, (*C.uint32_t)(unsafe.Pointer(&info[0])))); err != nil {
		return SubmapRegion{}, err
	}
	si, err := ParseRegionSubmapInfo64(WordBytes(info[:]))
	return SubmapRegion{Address: uint64(a), Size: uint64(s), Depth: uint32(d), Info: si}, err
}

// TaskInfoDyld wraps task_info(3) with TASK_DYLD_INFO.
func TaskInfoDyld(t Task) (TaskDyldInfo, error) {
	var w [TASK_DYLD_INFO_COUNT]uint32
	n := C.uint32_t(TASK_DYLD_INFO_COUNT)
	if err := kr("task_info(TASK_DYLD_INFO)", C.mt_task_info(C.uint32_t(t), TASK_DYLD_INFO, unsafe.Pointer(&w[0]), &n)); err != nil {
		return TaskDyldInfo{}, err
	}
	return ParseTaskDyldInfo(WordBytes(w[:n]))
}

// CsopsStatus wraps csops(2) with CS_OPS_STATUS.
func CsopsStatus(pid int) (CSFlags, error) {
	var f C.uint32_t
	if r, err := C.mt_csops_status(C.int(pid), &f); r != 0 {
		return 0, os.NewSyscallError("csops", err)
	}
	return CSFlags(f), nil
}

// PosixSpawn wraps posix_spawn(2) and returns the child's pid.
func PosixSpawn(a *SpawnAttr) (int, error) {
	path := C.CString(a.Path)
	defer C.free(unsafe.Pointer(path))
	var dir *C.char
	if a.Dir != "" {
		dir = C.CString(a.Dir)
		defer C.free(unsafe.Pointer(dir))
	}
	argv := cStrings(a.Argv)
	defer freeCStrings(argv)
	envp := cStrings(a.Env)
	defer freeCStrings(envp)
	var pid C.int
	if e := C.mt_spawn(&pid, path, &argv[0], &envp[0], dir, C.int(a.Stdio[0]), C.int(a.Stdio[1]), C.int(a.Stdio[2]), C.int(a.Flags)); e != 0 {
		return 0, os.NewSyscallError("posix_spawn", syscall.Errno(e))
	}
	return int(pid), nil
}

// cStrings returns a NULL-terminated array of C strings, allocated in C
// memory so that no Go pointer is stored in C memory.
func cStrings(ss []string) []*C.char {
	out := make([]*C.char, len(ss)+1)
	for i, s := range ss {
		out[i] = C.CString(s)
	}
	return out
}

func freeCStrings(cs []*C.char) {
	for _, c := range cs {
		if c != nil {
			C.free(unsafe.Pointer(c))
		}
	}
}

// ErrorString wraps mach_error_string(3).
func ErrorString(k KernReturn) string { return C.GoString(C.mt_error_string(C.kern_return_t(k))) }
