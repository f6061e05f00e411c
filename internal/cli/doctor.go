package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/darwin"
	"github.com/machtrace/machtrace/mach"
)

// DoctorOptions are the options of `machtrace doctor`.
type DoctorOptions struct {
	PID int

	// Probe gathers the facts; tests replace it.
	Probe func(pid int) *DoctorFacts
}

// NewCmdDoctor builds `machtrace doctor`.
func NewCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	o := &DoctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor [-p PID]",
		Short: "Say what this machine lets machtrace trace, and how to fix what it refuses",
		Long: `doctor reports what decides whether machtrace may trace a process here.

On macOS: System Integrity Protection, the Developer Tools security setting,
whether machtrace runs as root or carries the com.apple.security.cs.debugger
entitlement (see 'machtrace setup'), and whether it was built with cgo. With
-p PID it also reads the target's code-signing flags (platform binary, hardened
runtime, get-task-allow), tries task_for_pid, and says which rule decides.

On Linux: the Yama ptrace_scope setting, root and CAP_SYS_PTRACE, and with -p
whether the target may be attached.`,
		Example: `  machtrace doctor
  machtrace doctor -p 1234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return doctorRun(f, o)
		},
	}
	cmd.Flags().IntVarP(&o.PID, "pid", "p", 0, "also check whether the process `PID` can be traced")
	return cmd
}

// DoctorFacts is what the doctor found out. Fields that do not apply to the
// platform stay zero.
type DoctorFacts struct {
	GOOS, GOARCH string
	OSVersion    string
	Executable   string
	Root         bool
	Cgo          bool // this build can make Mach calls (macOS)

	// macOS.
	SIP              darwin.Tristate
	SIPText          string
	DevToolsSecurity darwin.Tristate
	Entitled         darwin.Tristate
	SelfTranslated   bool // machtrace itself runs under Rosetta

	// Linux.
	PtraceScope  int // -1 if there is no Yama
	CapSysPtrace bool

	Target *DoctorTarget
}

// DoctorTarget is what the doctor found out about -p PID.
type DoctorTarget struct {
	PID        int
	Exists     bool
	Name       string
	UID        int // -1 if unknown
	SameUser   darwin.Tristate
	Flags      mach.CSFlags
	FlagsKnown bool
	FlagsErr   string
	Translated bool
	// AttachErr is the result of actually taking the task port (macOS) and
	// releasing it at once; nil means it worked. Attempted says whether the
	// doctor tried.
	Attempted bool
	AttachErr error
	// ReadErr is the result of task_read_for_pid, the read-only port
	// (macOS 11.3+), tried alongside for information.
	ReadErr error
}

func doctorRun(f *Factory, o *DoctorOptions) error {
	probe := o.Probe
	if probe == nil {
		probe = probeDoctorFacts
	}
	facts := probe(o.PID)
	writeDoctorReport(f.IO.Out, facts)
	return nil
}

// writeDoctorReport prints the facts and the verdict.
func writeDoctorReport(w io.Writer, d *DoctorFacts) {
	line := func(status, item, detail string) { fmt.Fprintf(w, "%-5s %-26s %s\n", status, item, detail) }
	fmt.Fprintf(w, "machtrace doctor: %s/%s %s\n", d.GOOS, d.GOARCH, d.OSVersion)
	if d.Executable != "" {
		fmt.Fprintf(w, "binary: %s\n", d.Executable)
	}
	fmt.Fprintln(w)
	switch d.GOOS {
	case "darwin":
		writeDarwinReport(w, d, line)
	case "linux":
		writeLinuxReport(w, d, line)
	default:
		line("FAIL", "local processes", fmt.Sprintf("machtrace traces local processes only on macOS and Linux, not %s; kernel targets (--target kdp://, gdb://) work everywhere", d.GOOS))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writeDarwinReport(w io.Writer, d *DoctorFacts, line func(status, item, detail string)) {
	if d.Cgo {
		line("ok", "Mach calls (cgo)", "built with cgo")
	} else {
		line("FAIL", "Mach calls (cgo)", "built without cgo: it cannot trace anything; rebuild with CGO_ENABLED=1 (Xcode command line tools or zig as CC)")
	}
	if d.SelfTranslated {
		line("warn", "Rosetta", "this machtrace is x86_64 running under Rosetta: it can trace only x86_64 processes; use the arm64 build for native ones")
	}
	if d.Root {
		line("ok", "root", "running as root: any process not protected by SIP or the hardened runtime can be traced")
	} else {
		line("info", "root", "not root")
	}
	switch d.Entitled {
	case darwin.Yes:
		line("ok", "debugger entitlement", "signed with "+darwin.DebuggerEntitlement+": your own processes can be traced without sudo")
	case darwin.No:
		st := "warn"
		if d.Root {
			st = "info"
		}
		line(st, "debugger entitlement", "missing: run `machtrace setup` to sign this binary with "+darwin.DebuggerEntitlement+" (or use sudo)")
	default:
		line("info", "debugger entitlement", "unknown (codesign could not read this binary's entitlements)")
	}
	switch d.DevToolsSecurity {
	case darwin.Yes:
		line("ok", "Developer Tools security", "enabled: no authorization prompt for the entitled tracer")
	case darwin.No:
		line("info", "Developer Tools security", "disabled: an entitled, non-root machtrace needs the authorization prompt answered at the screen (impossible over SSH); `sudo DevToolsSecurity -enable` avoids it")
	default:
		line("info", "Developer Tools security", "unknown (DevToolsSecurity -status failed)")
	}
	switch d.SIP {
	case darwin.Yes:
		line("info", "System Integrity Protection", "enabled: Apple system binaries (/bin, /usr/bin, /System, platform binaries) cannot be traced, even as root")
	case darwin.No:
		line("warn", "System Integrity Protection", "disabled: system processes can be traced as root; re-enable it from Recovery (`csrutil enable`) when done")
	default:
		line("info", "System Integrity Protection", "unknown: "+d.SIPText)
	}
	fmt.Fprintln(w)
	switch {
	case !d.Cgo:
		fmt.Fprintln(w, "verdict: this build cannot trace macOS processes (no cgo); kernel targets over KDP and GDB stubs still work.")
	case d.Root:
		fmt.Fprintln(w, "verdict: as root, you can trace any process except Apple system binaries (SIP) and hardened-runtime apps without get-task-allow.")
	case d.Entitled == darwin.Yes:
		fmt.Fprintln(w, "verdict: you can trace your own processes that are not hardened (or have get-task-allow); use sudo for other users' processes.")
	default:
		fmt.Fprintln(w, "verdict: without sudo or `machtrace setup`, you can trace nothing; `sudo machtrace ...` traces most non-system processes.")
	}
	if t := d.Target; t != nil {
		fmt.Fprintln(w)
		writeDarwinTarget(w, d, t, line)
	}
}

func writeDarwinTarget(w io.Writer, d *DoctorFacts, t *DoctorTarget, line func(status, item, detail string)) {
	item := fmt.Sprintf("pid %d", t.PID)
	if !t.Exists {
		line("FAIL", item, "no such process")
		return
	}
	if t.Name != "" {
		item += " (" + t.Name + ")"
	}
	if t.FlagsKnown {
		line("info", item, "code signing: "+t.Flags.String())
	} else if t.FlagsErr != "" {
		line("info", item, "code signing flags unknown: "+t.FlagsErr)
	}
	facts := darwin.AttachFacts{PID: t.PID, Exists: true, Root: d.Root, Entitled: d.Entitled, SameUser: t.SameUser,
		TargetFlags: t.Flags, FlagsKnown: t.FlagsKnown, Translated: t.Translated && d.GOARCH == "arm64", Code: mach.KERN_FAILURE}
	switch {
	case t.Attempted && t.AttachErr == nil:
		line("ok", "task_for_pid", "granted: machtrace can trace it")
		writeReadPort(t, line)
		if t.FlagsKnown && t.Flags&mach.CS_PLATFORM_BINARY != 0 {
			line("warn", "thread_set_state", "refused by machtrace: it is a platform binary (setting its registers would crash machtrace)")
		}
		return
	case t.Attempted:
		var ke *mach.KernError
		if errors.As(t.AttachErr, &ke) {
			facts.Code = ke.Code
		}
		line("FAIL", "task_for_pid", t.AttachErr.Error())
		writeReadPort(t, line)
	}
	diag := darwin.Diagnose(facts)
	fmt.Fprintf(w, "rule: %s\nwhy: %s\nfix: %s\n", diag.Rule, diag.Reason, diag.Fix)
	if !t.Attempted {
		fmt.Fprintln(w, "(task_for_pid was not tried: this build cannot make Mach calls)")
	}
	fmt.Fprintf(w, "details of a refusal: %s\n", darwin.LogHint)
}

// writeReadPort reports task_read_for_pid, which machtrace does not use yet:
// whether macOS grants the read-only port more liberally is not documented.
func writeReadPort(t *DoctorTarget, line func(status, item, detail string)) {
	if t.ReadErr == nil {
		line("info", "task_read_for_pid", "granted (read-only port)")
		return
	}
	line("info", "task_read_for_pid", "refused: "+t.ReadErr.Error())
}

// Linux: Yama's ptrace_scope and CAP_SYS_PTRACE decide attaching.
func writeLinuxReport(w io.Writer, d *DoctorFacts, line func(status, item, detail string)) {
	privileged := d.Root || d.CapSysPtrace
	line("info", "root", yesNo(d.Root))
	line("info", "CAP_SYS_PTRACE", yesNo(d.CapSysPtrace))
	var verdict string
	mine := "you can attach to your own processes and launch programs under machtrace."
	if privileged {
		mine = "you are privileged: you can attach to any process and launch programs under machtrace."
	}
	switch d.PtraceScope {
	case -1:
		line("ok", "ptrace_scope", "no Yama LSM: classic ptrace rules (same user, or CAP_SYS_PTRACE)")
		verdict = mine
	case 0:
		line("ok", "ptrace_scope", "0 (classic): any process of your user can be attached")
		verdict = mine
	case 1:
		st := "warn"
		if privileged {
			st = "ok"
		}
		line(st, "ptrace_scope", "1 (restricted): only descendants can be traced without CAP_SYS_PTRACE")
		verdict = "launching works (-- CMD ARGS); attaching with -p needs sudo, or `sudo sysctl kernel.yama.ptrace_scope=0`."
		if privileged {
			verdict = "you are privileged: attaching and launching work."
		}
	case 2:
		st := "FAIL"
		if privileged {
			st = "ok"
		}
		line(st, "ptrace_scope", "2 (admin-only): attaching needs CAP_SYS_PTRACE")
		verdict = "run machtrace with sudo (or grant CAP_SYS_PTRACE: `sudo setcap cap_sys_ptrace=ep $(command -v machtrace)`)."
		if privileged {
			verdict = "you are privileged: attaching and launching work."
		}
	default:
		line("FAIL", "ptrace_scope", fmt.Sprintf("%d (no attach): ptrace attach is disabled until reboot", d.PtraceScope))
		verdict = "attaching is impossible on this boot (ptrace_scope 3); only launching children may still work."
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "verdict: "+verdict)
	if t := d.Target; t != nil {
		fmt.Fprintln(w)
		item := fmt.Sprintf("pid %d", t.PID)
		switch {
		case !t.Exists:
			line("FAIL", item, "no such process")
		case t.SameUser == darwin.No && !privileged:
			line("FAIL", item, fmt.Sprintf("%s belongs to uid %d, not you: use sudo", nameOr(t.Name), t.UID))
		case d.PtraceScope >= 2 && !privileged, d.PtraceScope == 1 && !privileged:
			line("warn", item, nameOr(t.Name)+": attaching needs sudo under this ptrace_scope, unless it is machtrace's own child")
		default:
			line("ok", item, nameOr(t.Name)+": can be attached")
		}
	}
}

func nameOr(s string) string {
	if s == "" {
		return "the process"
	}
	return s
}

// probeDoctorFacts gathers the facts of this machine.
func probeDoctorFacts(pid int) *DoctorFacts {
	d := &DoctorFacts{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Root: os.Geteuid() == 0, Cgo: mach.Available, PtraceScope: -1}
	d.Executable, _ = os.Executable()
	switch runtime.GOOS {
	case "darwin":
		probeDarwin(d, pid)
	case "linux":
		probeLinux(d, os.DirFS("/proc"), pid)
	}
	return d
}

// command runs a short system command and returns its combined output.
func command(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func probeDarwin(d *DoctorFacts, pid int) {
	if v, err := command("sw_vers", "-productVersion"); err == nil {
		d.OSVersion = "macOS " + v
	}
	if v, err := command("sysctl", "-n", "sysctl.proc_translated"); err == nil {
		d.SelfTranslated = v == "1"
	}
	out, err := command("csrutil", "status")
	d.SIP, d.SIPText = parseCsrutil(out, err)
	if out, err := command("DevToolsSecurity", "-status"); err == nil {
		d.DevToolsSecurity = parseDevToolsSecurity(out)
	}
	if d.Executable != "" {
		if ents, err := darwin.Entitlements(d.Executable); err == nil {
			d.Entitled = darwin.Of(darwin.HasEntitlement(ents, darwin.DebuggerEntitlement))
		}
	}
	if pid == 0 {
		return
	}
	t := &DoctorTarget{PID: pid, UID: -1}
	d.Target = t
	// ps is the portable way to learn name, uid and existence without cgo.
	if out, err := command("ps", "-o", "uid=,comm=", "-p", strconv.Itoa(pid)); err == nil && out != "" {
		t.Exists = true
		uid, name, _ := strings.Cut(strings.TrimSpace(out), " ")
		if u, err := strconv.Atoi(uid); err == nil {
			t.UID = u
			t.SameUser = darwin.Of(u == os.Geteuid())
		}
		t.Name = strings.TrimSpace(name)
	}
	if !t.Exists {
		return
	}
	if flags, err := mach.CsopsStatus(pid); err == nil {
		t.Flags, t.FlagsKnown = flags, true
	} else {
		t.FlagsErr = err.Error()
	}
	if mach.Available {
		t.Attempted = true
		task, err := mach.TaskForPid(pid)
		switch {
		case err != nil:
			t.AttachErr = err
		case task == mach.MACH_PORT_NULL:
			t.AttachErr = errors.New("task_for_pid returned MACH_PORT_NULL (the process is exiting)")
		default:
			mach.PortDeallocate(mach.Port(task))
		}
		if rt, err := mach.TaskReadForPid(pid); err != nil {
			t.ReadErr = err
		} else if rt != mach.MACH_PORT_NULL {
			mach.PortDeallocate(mach.Port(rt))
		}
	}
}

// parseCsrutil reads `csrutil status` ("System Integrity Protection status:
// enabled." or a custom configuration listing).
func parseCsrutil(out string, err error) (darwin.Tristate, string) {
	first, _, _ := strings.Cut(out, "\n")
	switch {
	case err != nil && out == "":
		return darwin.Unknown, err.Error()
	case strings.Contains(first, "status: enabled"):
		return darwin.Yes, first
	case strings.Contains(first, "status: disabled"):
		return darwin.No, first
	case strings.Contains(out, "Debugging Restrictions: disabled"):
		return darwin.No, "custom configuration with debugging restrictions disabled"
	}
	return darwin.Unknown, first
}

// parseDevToolsSecurity reads `DevToolsSecurity -status`.
func parseDevToolsSecurity(out string) darwin.Tristate {
	switch {
	case strings.Contains(out, "enabled"):
		return darwin.Yes
	case strings.Contains(out, "disabled"):
		return darwin.No
	}
	return darwin.Unknown
}

// capSysPtrace is CAP_SYS_PTRACE's bit in the capability sets.
const capSysPtrace = 19

// probeLinux reads Yama, the effective capabilities and the target's owner
// from procfs (proc is /proc as an fs.FS, so tests pass a fake).
func probeLinux(d *DoctorFacts, proc fs.FS, pid int) {
	if b, err := fs.ReadFile(proc, "sys/kernel/osrelease"); err == nil {
		d.OSVersion = "Linux " + strings.TrimSpace(string(b))
	}
	d.PtraceScope = -1
	if b, err := fs.ReadFile(proc, "sys/kernel/yama/ptrace_scope"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			d.PtraceScope = v
		}
	}
	if st, err := fs.ReadFile(proc, "self/status"); err == nil {
		if v, ok := statusField(st, "CapEff"); ok {
			if caps, err := strconv.ParseUint(v, 16, 64); err == nil {
				d.CapSysPtrace = caps&(1<<capSysPtrace) != 0
			}
		}
	}
	if pid == 0 {
		return
	}
	t := &DoctorTarget{PID: pid, UID: -1}
	d.Target = t
	st, err := fs.ReadFile(proc, strconv.Itoa(pid)+"/status")
	if err != nil {
		return
	}
	t.Exists = true
	if v, ok := statusField(st, "Name"); ok {
		t.Name = v
	}
	if v, ok := statusField(st, "Uid"); ok {
		// real, effective, saved, fs: ptrace wants them all to be ours.
		fields := strings.Fields(v)
		t.SameUser = darwin.Yes
		for _, f := range fields {
			u, err := strconv.Atoi(f)
			if err != nil {
				t.SameUser = darwin.Unknown
				break
			}
			t.UID = u
			if u != os.Geteuid() {
				t.SameUser = darwin.No
			}
		}
	}
}

// statusField returns the value of a "Key:\tvalue" line of /proc/*/status.
func statusField(status []byte, key string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
