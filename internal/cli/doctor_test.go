package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/machtrace/machtrace/darwin"
	"github.com/machtrace/machtrace/mach"
)

func TestProbeLinux(t *testing.T) {
	me := os.Geteuid()
	proc := fstest.MapFS{
		"sys/kernel/osrelease":         {Data: []byte("6.1.0\n")},
		"sys/kernel/yama/ptrace_scope": {Data: []byte("1\n")},
		"self/status":                  {Data: []byte("Name:\tmachtrace\nCapEff:\t0000000000080000\n")},
		"42/status":                    {Data: []byte(fmt.Sprintf("Name:\tworkload\nUid:\t%d\t%d\t%d\t%d\n", me, me, me, me))},
		"43/status":                    {Data: []byte(fmt.Sprintf("Name:\tother\nUid:\t%d\t%d\t%d\t%d\n", me+1, me+1, me+1, me+1))},
	}
	d := &DoctorFacts{GOOS: "linux"}
	probeLinux(d, proc, 42)
	if d.PtraceScope != 1 || !d.CapSysPtrace || d.OSVersion != "Linux 6.1.0" {
		t.Errorf("facts %+v", d)
	}
	if tg := d.Target; tg == nil || !tg.Exists || tg.Name != "workload" || tg.SameUser != darwin.Yes {
		t.Errorf("target %+v", d.Target)
	}
	probeLinux(d, proc, 43)
	if d.Target.SameUser != darwin.No || d.Target.UID != me+1 {
		t.Errorf("other user's target %+v", d.Target)
	}
	probeLinux(d, proc, 44)
	if d.Target.Exists {
		t.Error("missing pid exists")
	}
	d = &DoctorFacts{}
	probeLinux(d, fstest.MapFS{}, 0)
	if d.PtraceScope != -1 || d.CapSysPtrace {
		t.Errorf("no yama: %+v", d)
	}
}

func TestDoctorReportLinux(t *testing.T) {
	tests := []struct {
		name string
		d    DoctorFacts
		want []string
	}{
		{"scope 1 unprivileged", DoctorFacts{GOOS: "linux", PtraceScope: 1,
			Target: &DoctorTarget{PID: 7, Exists: true, Name: "w", SameUser: darwin.Yes}},
			[]string{"1 (restricted)", "launching works", "attaching with -p needs sudo", "warn  pid 7"}},
		{"scope 2 root", DoctorFacts{GOOS: "linux", PtraceScope: 2, Root: true},
			[]string{"ok    ptrace_scope", "you are privileged"}},
		{"scope 3", DoctorFacts{GOOS: "linux", PtraceScope: 3}, []string{"FAIL  ptrace_scope", "impossible"}},
		{"other user", DoctorFacts{GOOS: "linux", PtraceScope: 0,
			Target: &DoctorTarget{PID: 8, Exists: true, Name: "x", UID: 0, SameUser: darwin.No}},
			[]string{"FAIL  pid 8", "belongs to uid 0"}},
		{"windows", DoctorFacts{GOOS: "windows"}, []string{"only on macOS and Linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeDoctorReport(&b, &tt.d)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestDoctorReportDarwin(t *testing.T) {
	base := DoctorFacts{GOOS: "darwin", GOARCH: "arm64", OSVersion: "macOS 14.5", Cgo: true, SIP: darwin.Yes, Entitled: darwin.No}
	tests := []struct {
		name   string
		mod    func(d *DoctorFacts)
		want   []string
		absent []string
	}{
		{"plain user", func(d *DoctorFacts) {}, []string{"macOS 14.5", "missing: run `machtrace setup`", "you can trace nothing"}, nil},
		{"no cgo", func(d *DoctorFacts) { d.Cgo = false }, []string{"FAIL  Mach calls (cgo)", "cannot trace macOS processes"}, nil},
		{"entitled", func(d *DoctorFacts) { d.Entitled = darwin.Yes }, []string{"your own processes"}, nil},
		{"root, hardened target refused", func(d *DoctorFacts) {
			d.Root = true
			d.Target = &DoctorTarget{PID: 9, Exists: true, Name: "Safari", Flags: mach.CS_VALID | mach.CS_RUNTIME, FlagsKnown: true,
				Attempted: true, AttachErr: &mach.KernError{Op: "task_for_pid", Code: mach.KERN_FAILURE}}
		}, []string{"code signing: valid,runtime", "FAIL  task_for_pid", "rule: hardened-runtime", "get-task-allow", darwin.LogHint,
			"granted (read-only port)"}, nil},
		{"platform binary granted (SIP off)", func(d *DoctorFacts) {
			d.Root, d.SIP = true, darwin.No
			d.Target = &DoctorTarget{PID: 1, Exists: true, Flags: mach.CS_VALID | mach.CS_PLATFORM_BINARY, FlagsKnown: true, Attempted: true}
		}, []string{"warn  System Integrity Protection", "ok    task_for_pid", "thread_set_state"}, []string{"rule:"}},
		{"missing pid", func(d *DoctorFacts) { d.Target = &DoctorTarget{PID: 5} }, []string{"FAIL  pid 5", "no such process"}, nil},
		{"not attempted", func(d *DoctorFacts) {
			d.Cgo = false
			d.Target = &DoctorTarget{PID: 6, Exists: true, Flags: mach.CS_VALID, FlagsKnown: true}
		}, []string{"rule: root-or-entitlement", "was not tried"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base
			tt.mod(&d)
			var b strings.Builder
			writeDoctorReport(&b, &d)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tt.absent {
				if strings.Contains(b.String(), w) {
					t.Errorf("report has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestParseMacOSTools(t *testing.T) {
	tests := []struct {
		out  string
		err  error
		want darwin.Tristate
	}{
		{"System Integrity Protection status: enabled.", nil, darwin.Yes},
		{"System Integrity Protection status: disabled.", nil, darwin.No},
		{"System Integrity Protection status: unknown (Custom Configuration).\n\nConfiguration:\n\tDebugging Restrictions: disabled", nil, darwin.No},
		{"", errors.New("exec: not found"), darwin.Unknown},
	}
	for _, tt := range tests {
		if got, _ := parseCsrutil(tt.out, tt.err); got != tt.want {
			t.Errorf("parseCsrutil(%q) = %v, want %v", tt.out, got, tt.want)
		}
	}
	if parseDevToolsSecurity("Developer mode is currently enabled.") != darwin.Yes ||
		parseDevToolsSecurity("Developer mode is currently disabled.") != darwin.No {
		t.Error("parseDevToolsSecurity")
	}
}

func TestDoctorCommand(t *testing.T) {
	f, out, _ := testFactory()
	var got *DoctorOptions
	cmd := NewCmdDoctor(f, func(o *DoctorOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"-p", "123"})
	if err := cmd.Execute(); err != nil || got.PID != 123 {
		t.Fatalf("parse: %v %+v", err, got)
	}
	o := &DoctorOptions{PID: 77, Probe: func(pid int) *DoctorFacts {
		return &DoctorFacts{GOOS: "linux", PtraceScope: 0, Target: &DoctorTarget{PID: pid}}
	}}
	if err := doctorRun(f, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "FAIL  pid 77") {
		t.Errorf("output:\n%s", out)
	}
}
