package gdbremote_test

import (
	"fmt"
	"log"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/tracer"
)

// Open a QEMU guest's stub (qemu-system-x86_64 ... -gdb tcp:127.0.0.1:1234),
// halt it, print every vCPU's RIP and CR3, and let it run again.
func ExampleOpenTarget() {
	t, err := gdbremote.OpenTarget("127.0.0.1:1234", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close() // detaches with D;1: the guest runs on
	threads, err := t.Threads()
	if err != nil {
		log.Fatal(err)
	}
	if err := t.Suspend(); err != nil {
		log.Fatal(err)
	}
	defer t.Resume()
	for _, th := range threads {
		gen, err := t.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil {
			log.Fatal(err)
		}
		sys, err := t.ThreadState(th.ID, tracer.FlavorSystem)
		if err != nil {
			log.Fatal(err)
		}
		cr3, _ := sys.Get("cr3")
		fmt.Printf("%s: rip %#x cr3 %#x\n", th.Name, gen.PC(), cr3)
	}
}

// Resolve kernel addresses with a kallsyms dump; the KASLR slide is found
// through the stub.
func ExampleKernelSymbols() {
	t, err := gdbremote.OpenTarget("127.0.0.1:1234", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	sym, _, slide, err := gdbremote.KernelSymbols(t, "kallsyms")
	if err != nil {
		log.Fatal(err)
	}
	banner, err := sym.Addr("linux_banner")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := t.ReadMemory(banner, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("slide %#x (%s): %s\n", slide.Slide, slide.Method, buf)
}
