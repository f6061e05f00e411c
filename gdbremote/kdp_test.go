package gdbremote_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// serveKDP fronts the test VM's stub with the KDP server on a loopback UDP
// port and returns the port and the target (which the server holds halted
// while it waits for a debugger).
func serveKDP(t *testing.T, vm *testvm.VM) (string, tracer.Target) {
	t.Helper()
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tgt.Close()
		t.Fatal(err)
	}
	srv, err := kdpbridge.NewServer(pc, tgt, kdpbridge.ServerOptions{Logf: t.Logf})
	if err != nil {
		pc.Close()
		tgt.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("kdp serve: %v", err)
		}
		pc.Close()
		if err := tgt.Close(); err != nil {
			t.Errorf("close the gdb target: %v", err)
		}
		if st, err := vm.Status(); st != "running" {
			t.Errorf("QMP status after the KDP session = %q (%v), want running", st, err)
		}
	})
	for i := 0; srv.State() != "waiting" && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.State(); st != "waiting" {
		t.Fatalf("kdp server state %q, want waiting", st)
	}
	return pc.LocalAddr().String(), tgt
}

// vcpuRIPs reads every vCPU's RIP directly through the stub.
func vcpuRIPs(t *testing.T, tgt tracer.Target) map[uint64]tracer.ThreadID {
	t.Helper()
	threads, err := tgt.Threads()
	if err != nil {
		t.Fatal(err)
	}
	rips := map[uint64]tracer.ThreadID{}
	for _, th := range threads {
		regs, err := tgt.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil {
			t.Fatal(err)
		}
		rips[regs.PC()] = th.ID
	}
	return rips
}

// TestQEMUKDPServe reads the VM's registers through machtrace's KDP client,
// via the KDP server fronting the gdb target, and checks RIP against the
// stub read directly.
func TestQEMUKDPServe(t *testing.T) {
	vm := testvm.Shared(t)
	addr, tgt := serveKDP(t, vm)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kdpbridge.Connect(ctx, addr, kdpbridge.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Disconnect(ctx)
	info := cl.Info()
	t.Logf("KDP session: version %d, cpu type %#x, kernel version %q", info.Version, info.CPUType, info.KernelVersion)
	img, err := cl.ReadRegs(ctx, 0, kdp.X86ThreadState64)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) < 17*8 {
		t.Fatalf("x86_THREAD_STATE64 image of %d bytes", len(img))
	}
	kdpRIP := binary.LittleEndian.Uint64(img[16*8:])
	kdpRSP := binary.LittleEndian.Uint64(img[7*8:])
	// Idle vCPUs share a RIP (the idle loop), so match RIP and RSP together.
	threads, err := tgt.Threads()
	if err != nil {
		t.Fatal(err)
	}
	var tid tracer.ThreadID
	var seen []string
	for _, th := range threads {
		regs, err := tgt.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fmt.Sprintf("vCPU %d rip %#x rsp %#x", th.ID, regs.PC(), regs.SP()))
		if regs.PC() == kdpRIP && regs.SP() == kdpRSP {
			tid = th.ID
		}
	}
	if tid == 0 {
		t.Fatalf("KDP reads rip %#x rsp %#x, which no vCPU has through the stub: %v", kdpRIP, kdpRSP, seen)
	}
	t.Logf("KDP and the stub agree: vCPU %d rip %#x rsp %#x", tid, kdpRIP, kdpRSP)
	var buf [16]byte
	if _, err := cl.ReadMem(ctx, kdpRIP, buf[:]); err != nil {
		t.Errorf("read 16 bytes at rip through KDP: %v", err)
	}
	var want [16]byte
	if _, err := tgt.ReadMemory(kdpRIP, want[:]); err != nil || buf != want {
		t.Errorf("code at rip: KDP %x, stub %x (%v)", buf, want, err)
	}
}

// TestQEMUKDPBreakpoint sets a breakpoint on __schedule through KDP (the
// server plants and polls it), resumes, and waits for the exception: the
// stopped CPU's RIP must be the breakpoint, as the stub sees it too.
func TestQEMUKDPBreakpoint(t *testing.T) {
	vm := testvm.Shared(t)
	addr, tgt := serveKDP(t, vm)
	sym, _, _, err := gdbremote.KernelSymbols(tgt, vm.Kallsyms())
	if err != nil {
		t.Fatal(err)
	}
	bp, err := sym.Addr("__schedule")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kdpbridge.Connect(ctx, addr, kdpbridge.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Disconnect(ctx)
	if err := cl.SetBreakpoint(ctx, bp); err != nil {
		t.Fatalf("set breakpoint at __schedule %#x: %v", bp, err)
	}
	if err := cl.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	exc, err := cl.WaitException(ctx)
	if err != nil {
		t.Fatalf("no exception after resuming with a breakpoint on __schedule: %v", err)
	}
	t.Logf("exception: %+v", exc)
	defer func() {
		if t.Failed() {
			return
		}
		// The guest must survive the session (a wrong RIP would crash it
		// within moments): read both vCPUs again after it ran a while.
		time.Sleep(500 * time.Millisecond)
		if err := vm.Alive(); err != nil {
			t.Error(err)
		}
	}()
	img, err := cl.ReadRegs(ctx, 0, kdp.X86ThreadState64)
	if err != nil {
		t.Fatal(err)
	}
	rip := binary.LittleEndian.Uint64(img[16*8:])
	if rip != bp && rip != bp+1 {
		t.Errorf("rip %#x after the breakpoint, want __schedule %#x", rip, bp)
	}
	direct := vcpuRIPs(t, tgt)
	if _, ok := direct[rip]; !ok {
		t.Errorf("KDP rip %#x is none of the stub's %v", rip, direct)
	}
	// Do what LLDB does: the server reports an amd64 breakpoint as int3
	// leaves it (RIP one past); the debugger writes RIP back to the
	// breakpoint before resuming. Left at +1, the vCPU would resume in the
	// middle of an instruction and crash the guest.
	binary.LittleEndian.PutUint64(img[16*8:], bp)
	if err := cl.WriteRegs(ctx, 0, kdp.X86ThreadState64, img); err != nil {
		t.Fatalf("rewind rip: %v", err)
	}
	if err := cl.RemoveBreakpoint(ctx, bp); err != nil {
		t.Errorf("remove breakpoint: %v", err)
	}
	var code [1]byte
	if _, err := tgt.ReadMemory(bp, code[:]); err != nil || code[0] == 0xcc || code[0] == 0xeb {
		t.Errorf("code at __schedule after removal: %x (%v)", code, err)
	}
}

// TestQEMUKDPServeLLDB connects LLDB's kdp-remote (a KDP-enabled build named
// by LLDB_KDP; Debian's lldb has no KDP client) to the server fronting the
// stub and reads the registers.
func TestQEMUKDPServeLLDB(t *testing.T) {
	lldb := os.Getenv("LLDB_KDP")
	if lldb == "" {
		t.Skip("LLDB_KDP is not set: point it at a KDP-enabled lldb (see shared/docs/lldb-kdp.md) to run this test")
	}
	vm := testvm.Shared(t)
	addr, tgt := serveKDP(t, vm)
	// The server halts the guest as it starts serving and holds it until
	// LLDB detaches: read the vCPUs only once it has, so that both reads see
	// the same halted guest.
	for deadline := time.Now().Add(10 * time.Second); !tgt.Suspended(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the KDP server did not halt the guest within 10s")
		}
	}
	direct := vcpuRIPs(t, tgt)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lldb, "--no-lldbinit", "-b",
		"-o", "settings set plugin.process.kdp-remote.packet-timeout 5",
		"-o", "kdp-remote "+addr,
		"-o", "register read rip rsp",
		"-o", "detach")
	out, err := cmd.CombinedOutput()
	t.Logf("lldb:\n%s", out)
	if err != nil {
		t.Fatalf("lldb: %v", err)
	}
	m := regexp.MustCompile(`rip = 0x([0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no rip in lldb's register read")
	}
	rip, _ := strconv.ParseUint(string(m[1]), 16, 64)
	if _, ok := direct[rip]; !ok {
		t.Errorf("lldb's rip %#x is none of the vCPUs' RIPs %v", rip, fmt.Sprint(direct))
	}
}
