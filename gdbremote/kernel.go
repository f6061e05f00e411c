package gdbremote

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/machtrace/machtrace/tracer"
)

// ThreadIDs returns the vCPU thread ids without asking the stub (the
// sampler's fast path, tracer.ThreadLister): vCPUs do not come and go.
func (b *Backend) ThreadIDs() ([]tracer.ThreadID, error) {
	ids := make([]tracer.ThreadID, 0, len(b.cl.threads))
	for _, t := range b.cl.threads {
		for id, w := range b.ids {
			if w == t.ID {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

var idtRE = regexp.MustCompile(`(?m)^IDT=\s*([0-9a-fA-F]+)`)

// IDTBase asks the stub's monitor for the current vCPU's IDT base (QEMU's
// `info registers` prints "IDT= fffffe0000000000 00000fff"). The guest must
// be halted.
func (cl *Client) IDTBase() (uint64, error) {
	out, err := cl.Monitor("info registers")
	if err != nil {
		return 0, err
	}
	m := idtRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no IDT= line in the monitor's `info registers`")
	}
	return strconv.ParseUint(m[1], 16, 64)
}

// KernelSymbols loads a System.map or /proc/kallsyms file for the kernel
// that t (a GDB stub target) runs, finds the KASLR slide through the stub
// (the IDT, then the linux_banner text), and returns a symbolizer for
// kernel addresses. t is suspended while the slide is found.
func KernelSymbols(t tracer.Target, path string) (*tracer.Symbolizer, *tracer.KernelSymbols, tracer.KernelSlide, error) {
	ks, err := tracer.LoadKallsyms(path)
	if err != nil {
		return nil, nil, tracer.KernelSlide{}, fmt.Errorf("kernel symbols: %w", err)
	}
	if err := t.Suspend(); err != nil {
		return nil, nil, tracer.KernelSlide{}, err
	}
	var opts tracer.SlideOptions
	if b, ok := t.Backend().(*Backend); ok {
		if idt, err := b.cl.IDTBase(); err == nil {
			opts.IDTBase = idt
		}
	}
	slide, err := tracer.FindKernelSlide(t.ReadMemory, ks, opts)
	if rerr := t.Resume(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, tracer.KernelSlide{}, fmt.Errorf("%s: %w", path, err)
	}
	if b, ok := t.Backend().(*Backend); ok {
		b.SetNote(fmt.Sprintf("KASLR slide %#x, found by %s", slide.Slide, slide.Method))
	}
	sym := tracer.NewSymbolizer(nil, &tracer.SymbolizerOptions{ReadMemory: t.ReadMemory, Arch: t.Arch()})
	ks.AddTo(sym, slide.Slide, "[kernel.kallsyms]")
	return sym, ks, slide, nil
}
