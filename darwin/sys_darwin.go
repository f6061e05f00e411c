package darwin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// BSD-side facts, in pure Go over x/sys/unix (no cgo needed).

// pTranslated is P_TRANSLATED in kinfo_proc.kp_proc.p_flag: the process is
// x86_64 code running under Rosetta.
const pTranslated = 0x20000

func sysProcessExists(pid int) bool {
	return !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

func sysProcessInfo(pid int) (procInfo, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return procInfo{}, os.NewSyscallError("sysctl kern.proc.pid", err)
	}
	if kp.Proc.P_pid != int32(pid) {
		return procInfo{}, ErrNoProcess
	}
	return procInfo{
		Name:       unix.ByteSliceToString(kp.Proc.P_comm[:]),
		UID:        int(kp.Eproc.Ucred.Uid),
		Translated: kp.Proc.P_flag&pTranslated != 0,
	}, nil
}

func sysEuid() int { return os.Geteuid() }

func sysVABits() uint {
	v, err := unix.SysctlUint32("machdep.virtual_address_size")
	if err != nil {
		return 0
	}
	return uint(v)
}

func sysPageSize() uint64 { return uint64(os.Getpagesize()) }

// sysEntitled asks codesign(1) for this executable's entitlements.
func sysEntitled() Tristate {
	exe, err := os.Executable()
	if err != nil {
		return Unknown
	}
	ents, err := Entitlements(exe)
	if err != nil {
		return Unknown
	}
	return Of(HasEntitlement(ents, DebuggerEntitlement))
}

// Entitlements returns the entitlements plist embedded in a signed
// executable, as XML, using codesign(1). An unsigned or entitlement-less
// binary yields an empty result.
func Entitlements(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "codesign", "-d", "--entitlements", "-", "--xml", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && bytes.Contains(ee.Stderr, []byte("not signed")) {
			return nil, nil
		}
		return nil, err
	}
	return out, nil
}

func sysWait(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("wait4", err)
		}
		break
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus(), nil
	case ws.Signaled():
		return 128 + int(ws.Signal()), nil
	}
	return 0, nil
}

// sysKill kills a child that may be held stopped by posix_spawn: SIGKILL,
// then SIGCONT, whose delivery resumes the task so that it can die.
func sysKill(pid int) error {
	err := unix.Kill(pid, unix.SIGKILL)
	unix.Kill(pid, unix.SIGCONT)
	return err
}
