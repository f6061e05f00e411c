package tracer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// KernelSymbols is a Linux kernel's symbol table read from a System.map or
// /proc/kallsyms file, in the file's own address space: link-time addresses
// for System.map (and for kallsyms taken with nokaslr), the addresses of
// one boot for a kallsyms taken with KASLR on. KernelSlide finds the offset
// to a running kernel.
type KernelSymbols struct {
	Table *SymbolTable
	// Text and End are the addresses of _text (or _stext) and _end (or the
	// last kernel symbol): the range the table covers.
	Text, End uint64
	// Skipped counts lines left out: absolute and per-CPU symbols (which do
	// not move with KASLR) and module symbols.
	Skipped int
}

// ErrStubSystemMap means the file is the 83-byte placeholder that Debian's
// linux-image packages install as System.map.
var ErrStubSystemMap = errors.New("placeholder System.map (the real one is in the linux-image-<version>-dbg package; or capture /proc/kallsyms from the guest)")

// LoadKallsyms reads a System.map or /proc/kallsyms file.
func LoadKallsyms(path string) (*KernelSymbols, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ks, err := ParseKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// ParseKallsyms parses "ADDRESS TYPE NAME [MODULE]" lines: the format of
// both System.map and /proc/kallsyms. Kernel-half addresses are kept; symbols
// of type A/a (absolute), per-CPU offsets and module symbols are skipped.
func ParseKallsyms(r io.Reader) (*KernelSymbols, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	ks := &KernelSymbols{}
	var syms []Symbol
	var text, stext, end, maxAddr uint64
	lineNo := 0
	zero := 0
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		fields := strings.Fields(string(line))
		if len(fields) < 3 {
			return nil, fmt.Errorf("line %d: %q: want ADDRESS TYPE NAME", lineNo, line)
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad address %q", lineNo, fields[0])
		}
		typ, name := fields[1], fields[2]
		if addr == ^uint64(0) && strings.Contains(string(line), "real System.map") {
			return nil, ErrStubSystemMap
		}
		if addr == 0 {
			zero++
		}
		if len(fields) > 3 || typ == "A" || typ == "a" || typ == "U" || typ == "N" || typ == "n" || addr < 0xffff800000000000 {
			ks.Skipped++
			continue
		}
		switch name {
		case "_text":
			text = addr
		case "_stext":
			stext = addr
		case "_end":
			end = addr
		}
		maxAddr = max(maxAddr, addr)
		syms = append(syms, Symbol{Name: name, Start: addr})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(syms) == 0 {
		if zero > 0 {
			return nil, errors.New("every address is 0: the kallsyms was read without privilege (read it as root, or set kernel.kptr_restrict=0)")
		}
		return nil, errors.New("no kernel symbols found")
	}
	if text == 0 {
		text = stext
	}
	if text == 0 {
		text = syms[0].Start
		for _, s := range syms {
			text = min(text, s.Start)
		}
	}
	if end == 0 {
		end = maxAddr + 1
	}
	ks.Text, ks.End = text, end
	ks.Table = NewSymbolTable(syms)
	return ks, nil
}

// Addr returns the file address of the named symbol.
func (ks *KernelSymbols) Addr(name string) (uint64, bool) {
	s, ok := ks.Table.LookupName(name)
	return s.Start, ok
}

// KernelSlide is the offset of a running kernel from its symbol file, and
// how it was found.
type KernelSlide struct {
	Slide  uint64 // runtime address = file address + Slide
	Method string // "linux_banner at its file address", "IDT vector 0 (asm_exc_divide_error)", "linux_banner scan"
}

// SlideOptions tune FindKernelSlide.
type SlideOptions struct {
	// IDTBase is the IDT's address if known (from IDTR, or QEMU's `info
	// registers`); 0 means the fixed cpu_entry_area address x86_64 Linux
	// maps it at, 0xfffffe0000000000.
	IDTBase uint64
	// MaxSlide bounds the linux_banner scan; 0 means 1 GiB (x86_64 KASLR's
	// range for the kernel image).
	MaxSlide uint64
}

const bannerPrefix = "Linux version "

// FindKernelSlide finds the KASLR slide of the kernel that ks describes by
// reading its memory through read (a suspended target's ReadMemory). It
// tries, in order: linux_banner at its file address (no slide, or a
// kallsyms taken from this boot); the handler of IDT vector 0 against
// asm_exc_divide_error; and a scan of 2 MiB-aligned slides for the
// "Linux version " text at linux_banner. Every candidate is confirmed by
// the banner.
func FindKernelSlide(read func(addr uint64, p []byte) (int, error), ks *KernelSymbols, opts SlideOptions) (KernelSlide, error) {
	banner, ok := ks.Addr("linux_banner")
	if !ok {
		return KernelSlide{}, errors.New("kernel slide: the symbol file has no linux_banner (is it a Linux System.map or kallsyms?)")
	}
	check := func(slide uint64) bool {
		var b [len(bannerPrefix)]byte
		n, _ := read(banner+slide, b[:])
		return n == len(b) && string(b[:]) == bannerPrefix
	}
	if check(0) {
		return KernelSlide{Slide: 0, Method: "linux_banner at its file address"}, nil
	}
	idt := opts.IDTBase
	if idt == 0 {
		idt = 0xfffffe0000000000
	}
	for _, name := range []string{"asm_exc_divide_error", "divide_error"} {
		handler, ok := ks.Addr(name)
		if !ok {
			continue
		}
		var gate [16]byte
		if n, _ := read(idt, gate[:]); n != len(gate) {
			break
		}
		off := uint64(binary.LittleEndian.Uint16(gate[0:])) |
			uint64(binary.LittleEndian.Uint16(gate[6:]))<<16 |
			uint64(binary.LittleEndian.Uint32(gate[8:]))<<32
		if off >= handler && check(off-handler) {
			return KernelSlide{Slide: off - handler, Method: fmt.Sprintf("IDT vector 0 at %#x (%s)", idt, name)}, nil
		}
		break
	}
	limit := opts.MaxSlide
	if limit == 0 {
		limit = 1 << 30
	}
	const align = 2 << 20
	for slide := uint64(align); slide < limit; slide += align {
		if check(slide) {
			return KernelSlide{Slide: slide, Method: "linux_banner scan"}, nil
		}
	}
	return KernelSlide{}, fmt.Errorf("kernel slide: %q not found at linux_banner (%#x) for any slide below %#x (does the symbol file match the running kernel?)", bannerPrefix, banner, limit)
}

// AddTo adds the table to a symbolizer for a kernel running with the given
// slide.
func (ks *KernelSymbols) AddTo(s *Symbolizer, slide uint64, path string) {
	s.AddTable(ks.Text+slide, ks.End+slide, slide, path, ks.Table)
}
