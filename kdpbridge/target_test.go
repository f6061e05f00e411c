package kdpbridge

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

var fastClient = ClientOptions{Timeout: 500 * time.Millisecond, Tries: 3}

// dialFake serves f over KDP on loopback and dials it as a target.
func dialFake(t *testing.T, b tracer.Backend, so ServerOptions) (tracer.Target, *Backend) {
	t.Helper()
	srv, _ := startServer(t, b, so)
	tgt, err := Dial(context.Background(), srv.String(), &TargetOptions{ClientOptions: fastClient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tgt.Close() })
	return tgt, tgt.Backend().(*Backend)
}

// TestTargetOverServer drives the adapter (a KDP connection as a tracer
// target) against the server fronting a fake process: registers and memory
// equal the process's, writes land, a breakpoint is hit, reported, acked and
// removed, and a running kernel refuses to halt.
func TestTargetOverServer(t *testing.T) {
	f := newLLDBFake()
	tgt, kb := dialFake(t, fakePoller{f}, ServerOptions{ResumeReplyDelay: -1, PollInterval: 2 * time.Millisecond})

	if tgt.Arch() != tracer.ArchAMD64 {
		t.Fatalf("arch %s", tgt.Arch())
	}
	ths, err := tgt.Threads()
	if err != nil || len(ths) != 1 || ths[0].ID != 1 || ths[0].Name != "cpu0" || ths[0].State != tracer.StateHalted {
		t.Fatalf("threads %+v, %v", ths, err)
	}
	if err := tgt.Suspend(); err != nil { // halted already: no error
		t.Fatal(err)
	}

	got, err := tgt.ThreadState(1, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.GetState(1, tracer.FlavorGeneral)
	for _, name := range []string{"rax", "rbx", "rsp", "rbp", "rip", "rflags", "cs", "fs", "gs"} {
		g, _ := got.Get(name)
		w, _ := want.Get(name)
		if g != w {
			t.Errorf("%s = %#x over KDP, %#x in the process", name, g, w)
		}
	}

	buf := make([]byte, 1500) // more than one READMEM64 chunk
	n, err := tgt.ReadMemory(0xffffffff81a17a00, buf)
	if err != nil || n != len(buf) {
		t.Fatalf("read: %d, %v", n, err)
	}
	direct := make([]byte, len(buf))
	f.ReadMemory(0xffffffff81a17a00, direct)
	if !bytes.Equal(buf, direct) {
		t.Fatalf("memory over KDP differs from the process's")
	}
	if _, err := tgt.ReadMemory(0x1000, buf[:8]); !errors.Is(err, tracer.ErrUnmapped) {
		t.Fatalf("unmapped read: %v, want ErrUnmapped", err)
	}

	if _, err := tgt.WriteMemory(0xffffc90000003e80, []byte{0x41, 0x42}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.byteAtLocked(0xffffc90000003e81); c != 0x42 {
		t.Fatalf("write did not land: %#x", c)
	}
	_ = got.Set("rax", 0x4242)
	if err := tgt.SetThreadState(1, got); err != nil {
		t.Fatal(err)
	}
	if w, _ := f.GetState(1, tracer.FlavorGeneral); func() uint64 { v, _ := w.Get("rax"); return v }() != 0x4242 {
		t.Fatalf("setreg did not land")
	}

	// A breakpoint through the client: hit, EXCEPTION, ack, remove.
	c := kb.Client()
	const bp = 0xffffffff81a17a30
	if err := c.SetBreakpoint(context.Background(), bp); err != nil {
		t.Fatal(err)
	}
	if err := kb.Continue(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kb.WaitTrap(ctx); err != nil {
		t.Fatalf("no trap: %v", err)
	}
	if e, _ := kb.LastException(); e.Info[0] != (kdp.ExcInfo{Exception: kdp.ExcBreakpoint, Code: 3}) {
		t.Fatalf("exception %+v", e)
	}
	regs, err := tgt.ThreadState(1, tracer.FlavorGeneral)
	if err != nil || regs.PC() != bp+1 {
		t.Fatalf("pc after hit %#x (%v), want %#x", regs.PC(), err, uint64(bp+1))
	}
	if err := c.RemoveBreakpoint(context.Background(), bp); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("breakpoint byte left: %#x", c)
	}

	// Running: no halting at will.
	if err := kb.Continue(); err != nil {
		t.Fatal(err)
	}
	if err := kb.Stop(); !errors.Is(err, tracer.ErrCannotHalt) {
		t.Fatalf("Stop while running: %v, want ErrCannotHalt", err)
	}
	if _, err := kb.GetState(1, tracer.FlavorGeneral); !errors.Is(err, tracer.ErrCannotHalt) {
		t.Fatalf("registers while running: %v, want ErrCannotHalt", err)
	}
}

// TestSampleByBreakpoint samples a loop through a breakpoint trigger: each hit
// is read with the PC on the breakpoint, and the step over the original
// instruction uses the trace flag (the server arms the real flag, the fake CPU
// traps after one instruction).
func TestSampleByBreakpoint(t *testing.T) {
	f := newLLDBFake()
	f.threads[0].regs.Set("rip", 0xffffffff81a17b00)
	tgt, _ := dialFake(t, fakePoller{f}, ServerOptions{ResumeReplyDelay: -1, PollInterval: 2 * time.Millisecond})
	const bp = 0xffffffff81a17b02
	var hits int
	n, err := SampleByBreakpoint(context.Background(), tgt, bp, SampleOptions{Count: 3, Timeout: 5 * time.Second}, func(s BreakpointSample) error {
		hits++
		if s.Regs.PC() != bp || len(s.Stack) == 0 || s.Stack[0] != bp {
			t.Errorf("hit %d at %#x, stack %#x", hits, s.Regs.PC(), s.Stack)
		}
		return nil
	})
	if err != nil || n != 3 || hits != 3 {
		t.Fatalf("SampleByBreakpoint: %d samples, %d hits, %v", n, hits, err)
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("breakpoint left in memory")
	}
	if fl, _ := f.threads[0].regs.Get("rflags"); fl&x86TF != 0 {
		t.Fatalf("trace flag left set")
	}

	if _, err := SampleByBreakpoint(context.Background(), tracer.NewTarget(f), bp, SampleOptions{}, nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("non-KDP target: %v", err)
	}
}
