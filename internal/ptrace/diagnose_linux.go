package ptrace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AttachError explains why the kernel refused PTRACE_SEIZE.
type AttachError struct {
	PID   int
	Err   error  // the errno from ptrace
	Cause string // which rule refused it, and the fix
}

func (e *AttachError) Error() string {
	if errors.Is(e.Err, unix.EPERM) {
		return fmt.Sprintf("attach %d: permission denied (EPERM): %s", e.PID, e.Cause)
	}
	return fmt.Sprintf("attach %d: %v: %s", e.PID, e.Err, e.Cause)
}

// Unwrap returns ErrPermission for EPERM so callers match it with errors.Is,
// and the errno otherwise.
func (e *AttachError) Unwrap() []error {
	if errors.Is(e.Err, unix.EPERM) {
		return []error{ErrPermission, e.Err}
	}
	if errors.Is(e.Err, unix.ESRCH) {
		return []error{ErrNoProcess, e.Err}
	}
	return []error{e.Err}
}

func attachError(pid int, err error) error {
	e := &AttachError{PID: pid, Err: err}
	switch {
	case errors.Is(err, unix.ESRCH):
		e.Cause = "the process does not exist (any more)"
	case errors.Is(err, unix.EPERM):
		e.Cause = DiagnosePermission(pid, ReadHostFacts())
	default:
		e.Cause = "unexpected error from ptrace"
	}
	return e
}

// HostFacts are the inputs of the permission diagnosis, read from /proc.
type HostFacts struct {
	EUID               int
	HasCapPtrace       bool // CAP_SYS_PTRACE in the effective set
	PtraceScope        int  // /proc/sys/kernel/yama/ptrace_scope, -1 when Yama is absent
	TargetUID          int  // -1 when unknown
	TargetTracer       int  // TracerPid of the target, 0 when not traced
	TargetIsDescendant bool
}

// ReadHostFacts gathers HostFacts for the calling process.
func ReadHostFacts() HostFacts {
	h := HostFacts{EUID: os.Geteuid(), PtraceScope: -1, TargetUID: -1}
	if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			h.PtraceScope = v
		}
	}
	if st, err := readStatus(os.Getpid()); err == nil {
		if capEff, err := strconv.ParseUint(st["CapEff"], 16, 64); err == nil {
			h.HasCapPtrace = capEff&(1<<unix.CAP_SYS_PTRACE) != 0
		}
	}
	return h
}

// DiagnosePermission names the rule that refused an attach to pid, given the
// host facts, and says how to fix it.
func DiagnosePermission(pid int, h HostFacts) string {
	if st, err := readStatus(pid); err == nil {
		if f := strings.Fields(st["Uid"]); len(f) > 0 {
			h.TargetUID, _ = strconv.Atoi(f[0])
		}
		// TracerPid is the tracing thread's id; name its process.
		h.TargetTracer, _ = strconv.Atoi(st["TracerPid"])
		if h.TargetTracer != 0 {
			if tst, err := readStatus(h.TargetTracer); err == nil {
				if tgid, err := strconv.Atoi(tst["Tgid"]); err == nil {
					h.TargetTracer = tgid
				}
			}
		}
	}
	h.TargetIsDescendant = isDescendant(pid, os.Getpid())
	return diagnose(h)
}

// diagnose is the decision table behind DiagnosePermission.
func diagnose(h HostFacts) string {
	switch {
	case h.TargetTracer != 0:
		return fmt.Sprintf("the process is already traced by pid %d (a debugger or another tracer); detach it first", h.TargetTracer)
	case h.PtraceScope == 3:
		return "Yama ptrace_scope is 3: ptrace is disabled until reboot"
	case h.PtraceScope == 2 && !h.HasCapPtrace:
		return "Yama ptrace_scope is 2: only processes with CAP_SYS_PTRACE may attach; run as root or grant it (setcap cap_sys_ptrace+ep machtrace)"
	case !h.HasCapPtrace && h.TargetUID >= 0 && h.TargetUID != h.EUID:
		return fmt.Sprintf("the process belongs to uid %d and you are uid %d without CAP_SYS_PTRACE; run as root (sudo) or as its owner", h.TargetUID, h.EUID)
	case h.PtraceScope == 1 && !h.HasCapPtrace && !h.TargetIsDescendant:
		return "Yama ptrace_scope is 1: only a parent may attach to its descendants; launch the program under machtrace (-- CMD), run as root, or set kernel.yama.ptrace_scope=0 (sysctl -w kernel.yama.ptrace_scope=0)"
	case h.HasCapPtrace:
		return "the process is not dumpable or is protected by a security module (SELinux/AppArmor), even for CAP_SYS_PTRACE"
	}
	return "no CAP_SYS_PTRACE and the process is not dumpable (setuid, or it called prctl(PR_SET_DUMPABLE, 0)); run as root"
}

func readStatus(pid int) (map[string]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

func isDescendant(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		st, err := readStatus(pid)
		if err != nil {
			return false
		}
		ppid, _ := strconv.Atoi(st["PPid"])
		if ppid == ancestor {
			return true
		}
		pid = ppid
	}
	return false
}
