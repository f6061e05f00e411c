package tracer

import (
	"debug/gosym"
	"debug/macho"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Mach-O symbol type bits (<mach-o/nlist.h>).
const (
	machoNStab = 0xe0 // N_STAB: a debugger entry, not a symbol
	machoNType = 0x0e // N_TYPE mask
	machoNSect = 0x0e // N_SECT: defined in section n_sect
	machoNExt  = 0x01 // N_EXT: external
)

// machoObject is a Mach-O executable, dylib or kernel, of either arch.
type machoObject struct {
	path     string
	fatOff   uint64 // offset of the slice in a universal file
	textAddr uint64 // vmaddr of __TEXT
	segs     []macho.SegmentHeader
	syms     *SymbolTable
	lines    lazyLines
}

func (o *machoObject) table() *SymbolTable { return o.syms }

func (o *machoObject) line(addr uint64) (string, int, bool) { return o.lines.line(addr) }

func (o *machoObject) inlined(addr uint64) []inlineRange { return o.lines.inlined(addr) }

// isMachOMagic reports whether a file starts like a thin or universal
// Mach-O file.
func isMachOMagic(m [4]byte) bool {
	be, le := binary.BigEndian.Uint32(m[:]), binary.LittleEndian.Uint32(m[:])
	for _, v := range []uint32{be, le} {
		switch v {
		case macho.Magic32, macho.Magic64:
			return true
		}
	}
	return be == macho.MagicFat
}

// openMachO opens the slice of the Mach-O file at r that matches arch.
func openMachO(path string, r io.ReaderAt, arch Arch) (*macho.File, uint64, error) {
	var m [4]byte
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return nil, 0, fmt.Errorf("read Mach-O %s: %w", path, err)
	}
	if binary.BigEndian.Uint32(m[:]) != macho.MagicFat {
		f, err := macho.NewFile(r)
		if err != nil {
			return nil, 0, fmt.Errorf("read Mach-O %s: %w", path, err)
		}
		return f, 0, nil
	}
	fat, err := macho.NewFatFile(r)
	if err != nil {
		return nil, 0, fmt.Errorf("read universal Mach-O %s: %w", path, err)
	}
	want := arch
	if want == ArchUnknown {
		want, _ = ParseArch(runtime.GOARCH)
	}
	var pick *macho.FatArch
	for i := range fat.Arches {
		a := &fat.Arches[i]
		if machoArch(a.Cpu) == want {
			pick = a
			break
		}
		if pick == nil && machoArch(a.Cpu) != ArchUnknown {
			pick = a
		}
	}
	if pick == nil {
		return nil, 0, fmt.Errorf("universal Mach-O %s: no amd64 or arm64 slice", path)
	}
	return pick.File, uint64(pick.Offset), nil
}

func machoArch(c macho.Cpu) Arch {
	switch c {
	case macho.CpuAmd64:
		return ArchAMD64
	case macho.CpuArm64:
		return ArchARM64
	}
	return ArchUnknown
}

// openMachOObject reads the symbols of the Mach-O file f (which it closes)
// and prepares to read its DWARF lines on demand.
func openMachOObject(path string, f *os.File, arch Arch) (object, error) {
	defer f.Close()
	mf, fatOff, err := openMachO(path, f, arch)
	if err != nil {
		return nil, err
	}
	o := &machoObject{path: path, fatOff: fatOff}
	for _, l := range mf.Loads {
		if s, ok := l.(*macho.Segment); ok {
			o.segs = append(o.segs, s.SegmentHeader)
			if s.Name == "__TEXT" {
				o.textAddr = s.Addr
			}
		}
	}
	syms := machoSymbols(mf)
	if len(syms) == 0 {
		// A stripped Go binary still has its pclntab.
		if t, err := machoGoTable(mf); err == nil {
			syms = goSymbols(t)
		}
	}
	o.syms = NewSymbolTable(syms)
	o.lines.load = func() (lineSource, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read DWARF: %w", err)
		}
		defer f.Close()
		mf, _, err := openMachO(path, f, arch)
		if err != nil {
			return nil, err
		}
		d, err := mf.DWARF()
		if err != nil {
			if t, gerr := machoGoTable(mf); gerr == nil {
				return goLines{t}, nil
			}
			return nil, fmt.Errorf("read DWARF of %s: %w", path, err)
		}
		return newDwarfLines(d), nil
	}
	return o, nil
}

// machoGoTable parses the Go pclntab of mf, or fails when it has none.
func machoGoTable(mf *macho.File) (*gosym.Table, error) {
	pcln, text := mf.Section("__gopclntab"), mf.Section("__text")
	if pcln == nil || text == nil {
		return nil, errNoDebugInfo
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, fmt.Errorf("read __gopclntab: %w", err)
	}
	return goTable(data, text.Addr)
}

// machoSymbols collects the symbols defined in sections, external ones
// first. Display names lose the leading underscore; sizes are guessed up to
// the end of the symbol's section (NewSymbolTable shortens them to the next
// symbol).
func machoSymbols(mf *macho.File) []Symbol {
	if mf.Symtab == nil {
		return nil
	}
	// Externals first: NewSymbolTable gives an address to the first symbol.
	var ext, local []Symbol
	for _, s := range mf.Symtab.Syms {
		if s.Type&machoNStab != 0 || s.Type&machoNType != machoNSect || s.Sect == 0 || s.Name == "" {
			continue
		}
		// Assembler temporaries.
		if strings.HasPrefix(s.Name, "ltmp") || strings.HasPrefix(s.Name, "l_") || strings.HasPrefix(s.Name, "L") {
			continue
		}
		sym := Symbol{Name: strings.TrimPrefix(s.Name, "_"), Start: s.Value}
		if sym.Name != s.Name {
			sym.Raw = s.Name
		}
		if i := int(s.Sect) - 1; i < len(mf.Sections) {
			if sec := mf.Sections[i]; sec.Addr+sec.Size > s.Value {
				sym.Size, sym.Guessed = sec.Addr+sec.Size-s.Value, true
			}
		}
		if s.Type&machoNExt != 0 {
			ext = append(ext, sym)
		} else {
			local = append(local, sym)
		}
	}
	return append(ext, local...)
}

var errNoSegment = errors.New("no segment holds the mapping")

// bias returns the slide of the mapping im: Base minus the vmaddr of __TEXT
// when the backend knows Base (dyld reports the mach_header address), else
// derived from the segment that holds the mapping's file offset.
func (o *machoObject) bias(im Image) (uint64, error) {
	if im.Base != 0 {
		return im.Base - o.textAddr, nil
	}
	off := im.Offset
	if off >= o.fatOff {
		off -= o.fatOff
	}
	for _, s := range o.segs {
		if s.Filesz != 0 && off >= s.Offset && off < s.Offset+s.Filesz {
			return im.Start - (s.Addr + off - s.Offset), nil
		}
	}
	return 0, fmt.Errorf("%s: file offset %#x: %w", o.path, im.Offset, errNoSegment)
}
