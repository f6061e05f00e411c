package gdbremote_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/tracer"
)

// TestQEMUBreakpoints plants Z0 and Z1 breakpoints on a kernel function the
// busy guest calls all the time, waits for each to hit, single-steps, and
// removes them. QEMU handles both kinds itself: the guest never sees a trap.
func TestQEMUBreakpoints(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, &gdbremote.TargetOptions{Options: gdbremote.Options{Trace: traceLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	sym, _, _, err := gdbremote.KernelSymbols(tgt, vm.Kallsyms())
	if err != nil {
		t.Fatal(err)
	}
	fn := "__schedule"
	addr, err := sym.Addr(fn)
	if err != nil {
		t.Fatal(err)
	}
	b := tgt.Backend().(*gdbremote.Backend)
	if err := tgt.Suspend(); err != nil {
		t.Fatal(err)
	}
	defer tgt.Resume()
	cl := b.Client()
	for _, kind := range []gdbremote.BreakpointKind{gdbremote.SoftwareBreakpoint, gdbremote.HardwareBreakpoint} {
		if err := cl.SetBreakpoint(kind, addr); err != nil {
			t.Fatalf("Z%d at %s: %v", kind, fn, err)
		}
		if err := cl.Continue(); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitStop(30 * time.Second); err != nil {
			t.Fatalf("Z%d at %s (%#x) did not hit: %v", kind, fn, addr, err)
		}
		stop := cl.LastStop()
		if stop.Signal != 5 {
			t.Errorf("Z%d: stop %q, want SIGTRAP", kind, stop.Raw)
		}
		if err := cl.ClearBreakpoint(kind, addr); err != nil {
			t.Fatal(err)
		}
		g, err := cl.ReadRegisters(stop.Thread)
		if err != nil {
			t.Fatal(err)
		}
		var rip uint64
		for _, r := range cl.Target.Regs {
			if r.Name == "rip" {
				rip = binary.LittleEndian.Uint64(g[r.Offset:])
			}
		}
		if rip != addr {
			t.Errorf("Z%d: stopped thread %s at rip %#x, want %s %#x", kind, stop.Thread, rip, fn, addr)
		}
		t.Logf("Z%d hit: %q, rip %#x = %s", kind, stop.Raw, rip, sym.Lookup(rip))
		if err := cl.Step(stop.Thread); err != nil {
			t.Fatalf("step: %v", err)
		}
		g, err = cl.ReadRegisters(stop.Thread)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range cl.Target.Regs {
			if r.Name == "rip" {
				if after := binary.LittleEndian.Uint64(g[r.Offset:]); after == rip {
					t.Errorf("step left rip at %#x", after)
				} else {
					t.Logf("step: rip %#x -> %#x", rip, after)
				}
			}
		}
	}
}

// TestQEMUKernelSymbols finds the KASLR slide of the test VM's kernel (booted
// with KASLR on) from the nokaslr kallsyms the VM script captured, reads
// linux_banner by its symbol, and resolves each vCPU's RIP.
func TestQEMUKernelSymbols(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, &gdbremote.TargetOptions{Options: gdbremote.Options{Trace: traceLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	sym, ks, slide, err := gdbremote.KernelSymbols(tgt, vm.Kallsyms())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KASLR slide %#x (found by %s)", slide.Slide, slide.Method)
	if slide.Slide%(2<<20) != 0 {
		t.Errorf("slide %#x is not 2 MiB aligned", slide.Slide)
	}
	banner, _ := ks.Addr("linux_banner")
	if err := tgt.Suspend(); err != nil {
		t.Fatal(err)
	}
	defer tgt.Resume()
	buf := make([]byte, 160)
	if _, err := tgt.ReadMemory(banner+slide.Slide, buf); err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(buf), "\n")
	if !strings.HasPrefix(text, "Linux version ") {
		t.Fatalf("linux_banner at %#x: %q", banner+slide.Slide, text)
	}
	t.Logf("linux_banner: %s", text)
	// M: write "LINUX" over "Linux" (QEMU writes through the page tables
	// even to read-only kernel data), read it back, restore it.
	if _, err := tgt.WriteMemory(banner+slide.Slide, []byte("LINUX")); err != nil {
		t.Fatalf("write linux_banner: %v", err)
	}
	back := make([]byte, 13)
	_, err = tgt.ReadMemory(banner+slide.Slide, back)
	if _, rerr := tgt.WriteMemory(banner+slide.Slide, buf[:5]); rerr != nil {
		t.Fatalf("restore linux_banner: %v", rerr)
	}
	if err != nil || string(back) != "LINUX version" {
		t.Errorf("after writing: %q, %v", back, err)
	}
	addr, err := sym.Addr("jiffies_64")
	if err != nil {
		t.Fatal(err)
	}
	var j [8]byte
	if _, err := tgt.ReadMemory(addr, j[:]); err != nil || binary.LittleEndian.Uint64(j[:]) == 0 {
		t.Errorf("jiffies_64 at %#x: %x, %v", addr, j, err)
	}
	threads, err := tgt.Threads()
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		regs, err := tgt.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil {
			t.Fatal(err)
		}
		loc := sym.Lookup(regs.PC())
		t.Logf("vCPU %d: rip %#x %s", th.ID, regs.PC(), loc)
		if isKernelAddr(regs.PC()) && !loc.Known() {
			t.Errorf("vCPU %d: kernel rip %#x resolves to no symbol", th.ID, regs.PC())
		}
	}
}
