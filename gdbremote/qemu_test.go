package gdbremote_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/tracer"
)

// traceLog collects a packet trace that is printed only when a test fails.
func traceLog(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			s := b.String()
			if len(s) > 8000 {
				s = s[len(s)-8000:]
			}
			t.Logf("packet trace (tail):\n%s", s)
		}
	})
	return &b
}

func isKernelAddr(v uint64) bool { return v >= 0xffff800000000000 }

// TestQEMUClient exercises the protocol client against QEMU's real stub: the
// unasked stop reply at connect, the layout from target.xml, one thread per
// vCPU, g and p, E14, monitor commands, detach leaving the guest running,
// and reconnects.
func TestQEMUClient(t *testing.T) {
	vm := testvm.Shared(t)
	t.Logf("booted in %v, stub at %s", vm.BootTime, vm.GDBAddr)
	for round := 0; round < 2; round++ {
		tr := traceLog(t)
		cl, err := gdbremote.Dial(vm.GDBAddr, &gdbremote.Options{Timeout: 10 * time.Second, Trace: tr})
		if err != nil {
			t.Fatal(err)
		}
		// The VM ran when we connected: QEMU paused it and said so unasked.
		stops := cl.ConnectStops()
		if len(stops) == 0 || stops[0].Signal != 2 {
			t.Errorf("round %d: connect-time stop replies = %+v, want one with signal 2 (SIGINT)", round, stops)
		} else {
			t.Logf("round %d: unasked stop at connect: %q", round, stops[0].Raw)
		}
		if st, _ := vm.Status(); st != "paused" {
			t.Errorf("round %d: QMP status after connect = %q, want paused", round, st)
		}
		td := cl.Target
		if td.Arch != tracer.ArchAMD64 || td.GSize != 608 || len(td.Regs) != 66 {
			t.Errorf("target description: arch %v, %d registers, g size %d; want amd64, 66, 608 (QEMU 7.2)", td.Arch, len(td.Regs), td.GSize)
		}
		threads, err := cl.Threads()
		if err != nil {
			t.Fatal(err)
		}
		if len(threads) != 2 {
			t.Fatalf("threads = %+v, want 2 (one per vCPU)", threads)
		}
		for _, th := range threads {
			g, err := cl.ReadRegisters(th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(g) != td.GSize {
				t.Fatalf("g of %s: %d bytes, want %d", th.ID, len(g), td.GSize)
			}
			var rip gdbremote.Reg
			for _, r := range td.Regs {
				if r.Name == "rip" {
					rip = r
				}
			}
			p, err := cl.ReadRegister(th.ID, rip.Num)
			if err != nil {
				t.Fatalf("p%x on %s: %v", rip.Num, th.ID, err)
			}
			if !bytes.Equal(p, g[rip.Offset:rip.Offset+8]) {
				t.Errorf("%s: p rip = %x, g rip = %x", th.ID, p, g[rip.Offset:rip.Offset+8])
			}
			t.Logf("%s (%s): rip %x", th.ID, th.Extra, p)
		}
		var buf [16]byte
		_, err = cl.ReadMemory(0, buf[:])
		var pe *gdbremote.ProtocolError
		if !errors.Is(err, tracer.ErrUnmapped) || !errors.As(err, &pe) || pe.Code != 0x14 {
			t.Errorf("read at 0: err = %v, want ErrUnmapped from E14", err)
		}
		out, err := cl.Monitor("info status")
		if err != nil || !strings.Contains(out, "paused") {
			t.Errorf("monitor info status = %q, %v; want VM status: paused", out, err)
		}
		if err := cl.Continue(); err != nil {
			t.Fatal(err)
		}
		if st, _ := vm.Status(); st != "running" {
			t.Errorf("QMP status after continue = %q, want running", st)
		}
		if err := cl.Halt(); err != nil {
			t.Fatal(err)
		}
		if s := cl.LastStop(); s == nil || s.Signal != 2 {
			t.Errorf("stop after 0x03 = %+v, want signal 2", s)
		}
		if err := cl.Detach(); err != nil {
			t.Fatal(err)
		}
		if st, err := vm.Status(); st != "running" {
			t.Errorf("round %d: QMP status after detach = %q (%v), want running", round, st, err)
		}
	}
}

// TestQEMUReconnectAfterDrop checks the case of a debugger that died: its
// connection closed without D leaves QEMU's VM paused, and the next
// OpenTarget finds it so (no stop reply at connect) and lets it run.
func TestQEMUReconnectAfterDrop(t *testing.T) {
	vm := testvm.Shared(t)
	cl, err := gdbremote.Dial(vm.GDBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	time.Sleep(100 * time.Millisecond)
	if st, _ := vm.Status(); st != "paused" {
		t.Fatalf("status after a dropped connection = %q, want paused (QEMU 7.2's behaviour)", st)
	}
	tr := traceLog(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, &gdbremote.TargetOptions{Options: gdbremote.Options{Trace: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if s := tgt.Backend().(*gdbremote.Backend).Client().ConnectStops(); len(s) != 0 {
		t.Errorf("stop replies at connect to a paused VM: %+v, want none", s)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("status after OpenTarget = %q, want running", st)
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("status after Close = %q, want running", st)
	}
}

// TestQEMUBusyStub checks that a second debugger, which QEMU does not serve
// while the first holds the stub, gets a timeout error and not a hang.
func TestQEMUBusyStub(t *testing.T) {
	vm := testvm.Shared(t)
	first, err := gdbremote.Dial(vm.GDBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := gdbremote.Dial(vm.GDBAddr, &gdbremote.Options{Timeout: 1500 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Skip("this QEMU serves a second debugger connection; nothing to check")
	}
	var te *gdbremote.TimeoutError
	if !errors.As(err, &te) && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("second connection: %v, want a timeout or a closed connection", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second connection took %v to fail", d)
	}
	t.Logf("second debugger: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	if err := first.Detach(); err != nil {
		t.Fatal(err)
	}
	// QEMU now accepts the second, abandoned connection and pauses the VM
	// for it (the message above says so); the next open resumes it.
	st := ""
	for i := 0; i < 50 && st != "paused"; i++ {
		time.Sleep(20 * time.Millisecond)
		st, _ = vm.Status()
	}
	t.Logf("after the first debugger detached: VM %s", st)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("VM %s after the next open and close, want running", st)
	}
}

// TestQEMUTarget uses the stub as a tracer.Target.
func TestQEMUTarget(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, &gdbremote.TargetOptions{Options: gdbremote.Options{Trace: traceLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("status after OpenTarget = %q, want running", st)
	}
	threads, err := tgt.Threads()
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) != 2 {
		t.Fatalf("threads = %+v, want 2", threads)
	}
	if err := tgt.Suspend(); err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		g, err := tgt.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil {
			t.Fatal(err)
		}
		sys, err := tgt.ThreadState(th.ID, tracer.FlavorSystem)
		if err != nil {
			t.Fatal(err)
		}
		cr3, _ := sys.Get("cr3")
		cr0, _ := sys.Get("cr0")
		efer, _ := sys.Get("efer")
		t.Logf("thread %d %s (%v): rip %#x rsp %#x cr0 %#x cr3 %#x efer %#x", th.ID, th.Name, th.State, g.PC(), g.SP(), cr0, cr3, efer)
		if g.PC() == 0 || g.SP() == 0 {
			t.Errorf("thread %d: rip %#x rsp %#x", th.ID, g.PC(), g.SP())
		}
		if !isKernelAddr(g.PC()) && g.PC() >= 0x800000000000 {
			t.Errorf("thread %d: rip %#x is neither kernel nor user", th.ID, g.PC())
		}
		if cr3 == 0 || cr0&1 == 0 || cr0>>31 == 0 || efer&(1<<10) == 0 {
			t.Errorf("thread %d: cr0 %#x cr3 %#x efer %#x: want protected mode, paging, long mode active", th.ID, cr0, cr3, efer)
		}
		if _, ok := g.Get("eflags"); !ok {
			t.Errorf("eflags alias missing")
		}
		// Memory goes through the page tables of the vCPU read last, so
		// the code at its RIP is readable even in user space (whose
		// mapping the other vCPU's process may lack).
		var code [16]byte
		if _, err := tgt.ReadMemory(g.PC(), code[:]); err != nil {
			t.Errorf("thread %d: read the code at rip %#x: %v", th.ID, g.PC(), err)
		}
	}
	if err := tgt.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("status after Close = %q, want running", st)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testvm.StopShared()
	os.Exit(code)
}

// TestQEMUStayHalted opens the stub keeping the guest halted: the target
// starts suspended, and Resume lets the guest run.
func TestQEMUStayHalted(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget("gdb://"+vm.GDBAddr, &gdbremote.TargetOptions{StayHalted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if !tgt.Suspended() {
		t.Error("StayHalted target is not suspended")
	}
	if st, _ := vm.Status(); st != "paused" {
		t.Errorf("status = %q, want paused", st)
	}
	if err := tgt.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("status after Resume = %q, want running", st)
	}
}

// TestQEMUFrozen freezes the QEMU process (SIGSTOP) while the target is
// suspended: the next request must fail with a timeout error within the
// deadline, later ones at once, and the VM must be usable again after a
// thaw (QEMU finds the connection gone with the VM paused; the next open
// resumes it).
func TestQEMUFrozen(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, &gdbremote.TargetOptions{Options: gdbremote.Options{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Suspend(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			vm.Thaw()
		}
	}()
	start := time.Now()
	var buf [8]byte
	_, err = tgt.ReadMemory(0xfffffe0000000000, buf[:])
	var te *gdbremote.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("read from a frozen QEMU: %v, want a *TimeoutError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v with a 1 s deadline", d)
	}
	t.Logf("frozen QEMU: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, err := tgt.ThreadState(1, tracer.FlavorGeneral); !errors.As(err, &te) {
		t.Errorf("second call: %v, want the same timeout", err)
	}
	closeErr := tgt.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("calls on a dead connection took %v", d)
	}
	t.Logf("close after the timeout: %v", closeErr)
	vm.Thaw()
	thawed = true
	tgt, err = gdbremote.OpenTarget(vm.GDBAddr, nil)
	if err != nil {
		t.Fatalf("reconnect after thaw: %v", err)
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := vm.Status(); st != "running" {
		t.Errorf("VM %s after thaw and reconnect, want running", st)
	}
}
