//go:build unix

package kdpbridge

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

// lldbEnv names a KDP-capable LLDB binary (macOS LLDB, or a Linux build with
// the MacOSX-Kernel plugin enabled: shared/tools/build-lldb-kdp.sh).
const lldbEnv = "LLDB_KDP"

// TestLLDBLive drives a real LLDB's kdp-remote against the server fronting a
// real traced process: connect, register read, memory read, breakpoint set,
// continue, the breakpoint stop, continue again (stepping over the
// breakpoint) to the second hit, detach. The process must run on afterwards.
func TestLLDBLive(t *testing.T) {
	lldb := os.Getenv(lldbEnv)
	if lldb == "" {
		t.Skipf("set %s to a KDP-capable lldb to run this test", lldbEnv)
	}
	if _, err := os.Stat(lldb); err != nil {
		t.Skipf("%s: %v", lldbEnv, err)
	}
	hotA := funcAddr(t, tracee.HotA)
	l := testutil.Launch(t, tracee.Split, "60")
	var log syncBuf
	logf := func(format string, args ...any) { log.printf(format, args...) }
	// Halt it first (the server adopts the suspension), so the registers
	// read below are the ones LLDB will see.
	if err := l.Target.Suspend(); err != nil {
		t.Fatal(err)
	}
	srv := startServerTarget(t, l.Target, ServerOptions{Logf: logf})
	// The registers LLDB must show: the server's current thread is the first.
	ths, err := l.Target.Threads()
	if err != nil {
		t.Fatal(err)
	}
	regs, err := l.Target.ThreadState(ths[0].ID, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	code := make([]byte, 8)
	if _, err := l.Target.ReadMemory(hotA, code); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lldb, "--no-lldbinit", "-b",
		"-o", "settings set plugin.process.kdp-remote.packet-timeout 2",
		"-o", "kdp-remote "+srv.String(),
		"-o", "register read rip rsp rbp rax",
		"-o", fmt.Sprintf("memory read -c 8 %#x", hotA),
		"-o", fmt.Sprintf("breakpoint set -a %#x", hotA),
		"-o", "continue",
		// After the stop: as ordinary commands if LLDB treats the stop as a
		// breakpoint, as -k (after-crash) commands if it treats the
		// EXC_BREAKPOINT as a crash, which ends batch mode's -o list.
		"-o", "register read rip",
		"-o", "process status",
		// Continue again: LLDB steps over the breakpoint (REMOVE, a step
		// with the trace flag, SET) and stops at it the next time.
		"-o", "continue",
		"-o", "breakpoint list",
		"-o", "detach",
		"-k", "register read rip",
		"-k", "process status",
		"-k", "detach",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("lldb output:\n%s", out)
	t.Logf("server log:\n%s", log.String())
	if ctx.Err() != nil {
		t.Fatalf("lldb did not finish: %v", ctx.Err())
	}
	text := string(out)

	for _, want := range []string{"Version: EFI machtrace KDP stub"} {
		if !strings.Contains(text, want) {
			t.Errorf("lldb output lacks %q", want)
		}
	}
	// register read: rip, rsp as ptrace sees them.
	for name, v := range map[string]uint64{"rip": regs.PC(), "rsp": regs.SP()} {
		re := regexp.MustCompile(`(?m)^\s*` + name + ` = 0x([0-9a-f]+)`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("lldb printed no %s", name)
			continue
		}
		if got, _ := strconv.ParseUint(m[1], 16, 64); got != v {
			t.Errorf("lldb %s = %#x, ptrace has %#x", name, got, v)
		}
	}
	// memory read: the bytes of HotA.
	memRe := regexp.MustCompile(fmt.Sprintf(`0x0*%x: (0x)?%02x (0x)?%02x (0x)?%02x`, hotA, code[0], code[1], code[2]))
	if !memRe.MatchString(text) {
		t.Errorf("lldb memory read does not show HotA's bytes %x", code[:3])
	}
	// The stop at the breakpoint, rip rewound onto it by LLDB.
	if !strings.Contains(text, "stop reason = breakpoint") && !strings.Contains(text, "EXC_BREAKPOINT") {
		t.Errorf("lldb reported no breakpoint stop")
	}
	rips := regexp.MustCompile(`(?m)^\s*rip = 0x([0-9a-f]+)`).FindAllStringSubmatch(text, -1)
	if len(rips) < 2 {
		t.Errorf("lldb printed rip %d times, want 2 (before and after the stop)", len(rips))
	} else if got, _ := strconv.ParseUint(rips[len(rips)-1][1], 16, 64); got != hotA {
		t.Errorf("rip at the stop = %#x, want the breakpoint %#x", got, hotA)
	}
	if !strings.Contains(text, "hit count = 2") {
		t.Errorf("lldb did not stop at the breakpoint a second time after stepping over it")
	}
	if !strings.Contains(text, "detached") {
		t.Errorf("lldb did not detach")
	}
	if !strings.Contains(log.String(), "DISCONNECT") {
		t.Errorf("the server saw no DISCONNECT")
	}
	checkRunsOn(t, l)
	after := make([]byte, 8)
	l.Target.ReadMemory(hotA, after)
	if string(after) != string(code) {
		t.Errorf("HotA after detach %x, was %x: breakpoint not removed", after, code)
	}
}

// syncBuf is a log buffer the server goroutine writes while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, format+"\n", args...)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
