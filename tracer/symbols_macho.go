package tracer

import (
	"bytes"
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
		if s.Filesz != 0 && s.Memsz != 0 && off >= s.Offset && off < s.Offset+s.Filesz {
			return im.Start - (s.Addr + off - s.Offset), nil
		}
	}
	return 0, fmt.Errorf("%s: file offset %#x: %w", o.path, im.Offset, errNoSegment)
}

// maxMemLoadCmds bounds the load commands read from memory (sizeofcmds).
const maxMemLoadCmds = 1 << 20

// newMachOMemObject reads the symbol table of a 64-bit Mach-O image from the
// target's memory, the mach_header being at base. This is how images that
// have no file of their own are symbolized: on macOS 11 and later the system
// libraries live only in the dyld shared cache. The symbol and string tables
// are found through __LINKEDIT (file offsets in LC_SYMTAB are relative to
// it, which also holds for images of the shared cache); strings are read on
// demand, a page at a time, since a shared cache's string pool is shared by
// every image in it. There are no source lines.
func newMachOMemObject(path string, base uint64, read func(uint64, []byte) (int, error)) (*machoObject, error) {
	m := &memReader{read: read, pages: make(map[uint64][]byte)}
	hdr, err := m.bytes(base, 32)
	if err != nil {
		return nil, fmt.Errorf("read Mach-O header of %s at %#x: %w", path, base, err)
	}
	le := binary.LittleEndian
	if le.Uint32(hdr) != macho.Magic64 {
		return nil, fmt.Errorf("%s at %#x: %w (magic %#x)", path, base, errUnknownFormat, le.Uint32(hdr))
	}
	ncmds, size := le.Uint32(hdr[16:]), le.Uint32(hdr[20:])
	if size > maxMemLoadCmds {
		return nil, fmt.Errorf("%s at %#x: load commands of %d bytes", path, base, size)
	}
	cmds, err := m.bytes(base+32, int(size))
	if err != nil {
		return nil, fmt.Errorf("read load commands of %s: %w", path, err)
	}
	o := &machoObject{path: path}
	var (
		sects                          []macho.Section64
		linkedit                       *macho.SegmentHeader
		symoff, nsyms, stroff, strsize uint32
		haveSymtab                     bool
	)
	for i := uint32(0); i < ncmds && len(cmds) >= 8; i++ {
		cmd, n := macho.LoadCmd(le.Uint32(cmds)), le.Uint32(cmds[4:])
		if n < 8 || int(n) > len(cmds) {
			return nil, fmt.Errorf("%s: load command %d has bad size %d", path, i, n)
		}
		c := cmds[:n]
		switch {
		case cmd == macho.LoadCmdSegment64 && n >= 72:
			seg := macho.SegmentHeader{
				Cmd: cmd, Len: n, Name: cstring(c[8:24]),
				Addr: le.Uint64(c[24:]), Memsz: le.Uint64(c[32:]), Offset: le.Uint64(c[40:]), Filesz: le.Uint64(c[48:]),
				Nsect: le.Uint32(c[64:]),
			}
			o.segs = append(o.segs, seg)
			if seg.Name == "__TEXT" {
				o.textAddr = seg.Addr
			}
			for k, off := uint32(0), 72; k < seg.Nsect && off+80 <= len(c); k, off = k+1, off+80 {
				sects = append(sects, macho.Section64{Addr: le.Uint64(c[off+32:]), Size: le.Uint64(c[off+40:])})
			}
		case cmd == macho.LoadCmdSymtab && n >= 24:
			symoff, nsyms, stroff, strsize = le.Uint32(c[8:]), le.Uint32(c[12:]), le.Uint32(c[16:]), le.Uint32(c[20:])
			haveSymtab = true
		}
		cmds = cmds[n:]
	}
	for i := range o.segs {
		if o.segs[i].Name == "__LINKEDIT" {
			linkedit = &o.segs[i]
		}
	}
	if !haveSymtab || linkedit == nil {
		return nil, fmt.Errorf("%s at %#x: no LC_SYMTAB or __LINKEDIT", path, base)
	}
	slide := base - o.textAddr
	at := func(fileoff uint32) uint64 { return linkedit.Addr + slide + uint64(fileoff) - linkedit.Offset }
	if nsyms > 1<<21 {
		return nil, fmt.Errorf("%s: %d symbols", path, nsyms)
	}
	nl, err := m.bytes(at(symoff), int(nsyms)*16)
	if err != nil {
		return nil, fmt.Errorf("read symbol table of %s: %w", path, err)
	}
	var ext, local []Symbol
	for i := 0; i+16 <= len(nl); i += 16 {
		e := nl[i : i+16]
		strx, typ, sect, value := le.Uint32(e), e[4], e[5], le.Uint64(e[8:])
		if typ&machoNStab != 0 || typ&machoNType != machoNSect || sect == 0 || strx == 0 || strx >= strsize {
			continue
		}
		raw, err := m.cstring(at(stroff)+uint64(strx), 4096)
		if err != nil || raw == "" || strings.HasPrefix(raw, "ltmp") || strings.HasPrefix(raw, "l_") || strings.HasPrefix(raw, "L") {
			continue
		}
		sym := Symbol{Name: strings.TrimPrefix(raw, "_"), Start: value}
		if sym.Name != raw {
			sym.Raw = raw
		}
		if k := int(sect) - 1; k < len(sects) && sects[k].Addr+sects[k].Size > value {
			sym.Size, sym.Guessed = sects[k].Addr+sects[k].Size-value, true
		}
		if typ&machoNExt != 0 {
			ext = append(ext, sym)
		} else {
			local = append(local, sym)
		}
	}
	o.syms = NewSymbolTable(append(ext, local...))
	o.lines.load = func() (lineSource, error) { return nil, fmt.Errorf("%s: %w", path, errNoDebugInfo) }
	return o, nil
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// memReader reads target memory in pages, remembering them.
type memReader struct {
	read  func(uint64, []byte) (int, error)
	pages map[uint64][]byte
}

const memPage = 4096

// page returns the page at addr (page aligned); a short page ends where the
// memory does.
func (m *memReader) page(addr uint64) ([]byte, error) {
	if p, ok := m.pages[addr]; ok {
		return p, nil
	}
	p := make([]byte, memPage)
	n, err := m.read(addr, p)
	if n == 0 {
		if err == nil {
			err = ErrUnmapped
		}
		return nil, err
	}
	m.pages[addr] = p[:n]
	return p[:n], nil
}

// bytes reads n bytes at addr. Large reads go straight to the target.
func (m *memReader) bytes(addr uint64, n int) ([]byte, error) {
	if n > 4*memPage {
		b := make([]byte, n)
		got, err := m.read(addr, b)
		if got < n {
			if err == nil {
				err = ErrUnmapped
			}
			return nil, fmt.Errorf("read %d bytes at %#x: %w", n, addr, err)
		}
		return b, nil
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		a := addr + uint64(len(out))
		p, err := m.page(a &^ (memPage - 1))
		if err != nil {
			return nil, fmt.Errorf("read at %#x: %w", a, err)
		}
		off := int(a & (memPage - 1))
		if off >= len(p) {
			return nil, fmt.Errorf("read at %#x: %w", a, ErrUnmapped)
		}
		out = append(out, p[off:min(len(p), off+n-len(out))]...)
	}
	return out, nil
}

// cstring reads a NUL-terminated string of at most limit bytes at addr.
func (m *memReader) cstring(addr uint64, limit int) (string, error) {
	var out []byte
	for len(out) < limit {
		a := addr + uint64(len(out))
		p, err := m.page(a &^ (memPage - 1))
		if err != nil {
			return "", err
		}
		off := int(a & (memPage - 1))
		if off >= len(p) {
			return "", ErrUnmapped
		}
		if i := bytes.IndexByte(p[off:], 0); i >= 0 {
			return string(append(out, p[off:off+i]...)), nil
		}
		out = append(out, p[off:]...)
	}
	return "", fmt.Errorf("string at %#x longer than %d bytes", addr, limit)
}
