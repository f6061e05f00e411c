//go:build unix

package kdpbridge

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

func TestMain(m *testing.M) {
	tracee.RunIfRequested()
	os.Exit(m.Run())
}

// funcAddr returns fn's entry address as the re-executed test binary has it,
// skipping when the binary is position-independent (the child's load address
// would differ).
func funcAddr(t *testing.T, fn any) uint64 {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		t.Skip("test binary is position-independent")
	}
	return uint64(reflect.ValueOf(fn).Pointer())
}

// TestProcessOverKDP serves a real traced process (a child running
// tracee.HotA/HotB) over KDP on loopback and drives it with the client:
// registers equal the ptrace backend's, memory equals direct reads, and after
// DISCONNECT the process runs on.
func TestProcessOverKDP(t *testing.T) {
	if testing.Short() {
		t.Skip("launches a process")
	}
	hotA := funcAddr(t, tracee.HotA)
	l := testutil.Launch(t, tracee.Split, "60")
	srv := startServerTarget(t, l.Target, ServerOptions{ResumeReplyDelay: -1, PollInterval: 5 * time.Millisecond})
	tgt, err := Dial(context.Background(), srv.String(), &TargetOptions{ClientOptions: fastClient})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if !l.Target.Suspended() {
		t.Fatal("the process runs while a debugger is connected")
	}

	// Registers: KDP's CPU is the server's current thread, the first one.
	ths, err := l.Target.Threads()
	if err != nil {
		t.Fatal(err)
	}
	direct, err := l.Target.ThreadState(ths[0].ID, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	overKDP, err := tgt.ThreadState(1, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, d := range overKDP.Layout().Descs() {
		w, ok := direct.Get(d.Name)
		if !ok {
			continue
		}
		g, _ := overKDP.Get(d.Name)
		if g != w {
			t.Errorf("%s = %#x over KDP, %#x from ptrace", d.Name, g, w)
		}
		compared++
	}
	t.Logf("%d registers equal (pc %#x, sp %#x)", compared, overKDP.PC(), overKDP.SP())
	if compared < 17 {
		t.Fatalf("only %d registers compared", compared)
	}

	// Memory: code and stack, over KDP and directly.
	for _, a := range []uint64{hotA, overKDP.SP()} {
		got := make([]byte, 3000)
		want := make([]byte, len(got))
		n, err := tgt.ReadMemory(a, got)
		if err != nil {
			t.Fatalf("read %#x over KDP: %d, %v", a, n, err)
		}
		if m, err := l.Target.ReadMemory(a, want); err != nil || m != n {
			t.Fatalf("direct read %#x: %d, %v", a, m, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("memory at %#x differs over KDP", a)
		}
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	checkRunsOn(t, l)
}

// checkRunsOn checks that the process runs again after the debugger left, and
// survives.
func checkRunsOn(t *testing.T, l *testutil.Launched) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for l.Target.Suspended() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Target.Suspended() {
		t.Fatal("process still suspended after DISCONNECT")
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(l.PID, 0); err != nil {
		t.Fatalf("process gone: %v", err)
	}
	for tid, st := range testutil.TaskStates(l.PID) {
		if st == 'Z' || st == 'X' {
			t.Fatalf("thread %s is dead (%c): the process did not survive", tid, st)
		}
	}
}

// TestProcessBreakpointOverKDP plants a breakpoint on HotA, which the traced
// process calls all the time: it is hit, reported as EXC_BREAKPOINT,
// acknowledged and removed; SampleByBreakpoint then samples HotB three times,
// stepping over the breakpoint in between; and the process runs on unharmed.
// With the Linux backend (no TrapWaiter) the breakpoints are self-jumps found
// by polling and the steps are emulated.
func TestProcessBreakpointOverKDP(t *testing.T) {
	if testing.Short() {
		t.Skip("launches a process")
	}
	hotA := funcAddr(t, tracee.HotA)
	l := testutil.Launch(t, tracee.Split, "60")
	_, waiter := l.Target.Backend().(TrapWaiter)
	t.Logf("backend %T, TrapWaiter: %v (breakpoints are %s)", l.Target.Backend(), waiter, map[bool]string{true: "int3", false: "self-jumps found by polling"}[waiter])
	srv := startServerTarget(t, l.Target, ServerOptions{ResumeReplyDelay: -1, PollInterval: 5 * time.Millisecond})
	tgt, err := Dial(context.Background(), srv.String(), &TargetOptions{ClientOptions: fastClient})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	kb := tgt.Backend().(*Backend)
	orig := make([]byte, 16)
	l.Target.ReadMemory(hotA, orig)

	// A breakpoint on HotA, which the process calls all the time.
	c := kb.Client()
	ctx := context.Background()
	if err := c.SetBreakpoint(ctx, hotA); err != nil {
		t.Fatal(err)
	}
	if err := kb.Continue(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	cpu, err := kb.WaitTrap(wctx)
	if err != nil {
		t.Fatalf("no breakpoint hit: %v", err)
	}
	t.Logf("hit after %v on cpu %d", time.Since(start), cpu)
	if e, _ := kb.LastException(); e.Info[0].Exception != kdp.ExcBreakpoint || e.Info[0].Code != 3 {
		t.Fatalf("exception %+v, want EXC_BREAKPOINT/EXC_I386_BPTFLT", e.Info)
	}
	regs, err := tgt.ThreadState(1, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	if regs.PC() != hotA+1 {
		t.Fatalf("pc %#x after the hit, want HotA+1 = %#x", regs.PC(), hotA+1)
	}
	if err := c.RemoveBreakpoint(ctx, hotA); err != nil {
		t.Fatal(err)
	}
	now := make([]byte, 16)
	l.Target.ReadMemory(hotA, now)
	if !bytes.Equal(now, orig) {
		t.Fatalf("HotA not restored: %x, was %x", now, orig)
	}
	// Rewind the PC onto the restored instruction, as LLDB does, and let go.
	_ = regs.Set("rip", hotA)
	if err := tgt.SetThreadState(1, regs); err != nil {
		t.Fatal(err)
	}

	// Sampling through a trigger: three hits of HotB, each read with the PC
	// on the breakpoint, stepping over it in between.
	hotB := funcAddr(t, tracee.HotB)
	var pcs []uint64
	n, err := SampleByBreakpoint(ctx, tgt, hotB, SampleOptions{Count: 3, Timeout: 10 * time.Second}, func(s BreakpointSample) error {
		pcs = append(pcs, s.Regs.PC())
		// HotB's caller is runSplit, which calls it right after HotA.
		if len(s.Stack) < 3 || s.Stack[1] <= hotB-0x10000 || s.Stack[1] >= hotB+0x10000 {
			t.Errorf("stack at HotB: %#x (want runSplit's return address next)", s.Stack)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("SampleByBreakpoint: %d samples, %v", n, err)
	}
	for _, pc := range pcs {
		if pc != hotB {
			t.Fatalf("sample pcs %#x, want HotB %#x", pcs, hotB)
		}
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	checkRunsOn(t, l)
}

// BenchmarkProcessReadRegs measures one READREGS round trip on loopback with
// the server reading a real traced process through ptrace.
func BenchmarkProcessReadRegs(b *testing.B) {
	l := testutil.Launch(b, tracee.Sleep, "60")
	srv := startServerTarget(b, l.Target, ServerOptions{})
	c, err := Connect(context.Background(), srv.String(), fastClient)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64); err != nil {
			b.Fatal(err)
		}
	}
}
