package tracer

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// defaultDebugDirs is where distributions install separate debug files
// (/usr/lib/debug/.build-id/ab/cdef....debug, /usr/lib/debug/usr/bin/x.debug).
var defaultDebugDirs = []string{"/usr/lib/debug"}

// elfObject is an ELF executable, shared object or in-memory image ([vdso]).
type elfObject struct {
	path  string
	typ   elf.Type
	loads []elf.ProgHeader // PT_LOAD segments
	syms  *SymbolTable
	lines lazyLines
}

func (o *elfObject) table() *SymbolTable { return o.syms }

func (o *elfObject) line(addr uint64) (string, int, bool) { return o.lines.line(addr) }

func (o *elfObject) inlined(addr uint64) []inlineRange { return o.lines.inlined(addr) }

// openELFObject reads the symbols of the ELF file f (which it closes) and
// prepares to read its DWARF lines on demand.
func openELFObject(path string, f *os.File, debugDirs []string) (object, error) {
	defer f.Close()
	o, err := newELFObject(path, f, debugDirs, func() (*dwarf.Data, error) { return elfDWARF(path, debugDirs) })
	if err != nil {
		return nil, err
	}
	return o, nil
}

// newELFObject reads an ELF image from r; a stripped image's full symbol
// table is looked for in its separate debug file under debugDirs.
// loadDWARF, when not nil, returns the image's debug information on first use
// of lines.
func newELFObject(path string, r io.ReaderAt, debugDirs []string, loadDWARF func() (*dwarf.Data, error)) (*elfObject, error) {
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("read ELF %s: %w", path, err)
	}
	o := &elfObject{path: path, typ: ef.Type}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			o.loads = append(o.loads, p.ProgHeader)
		}
	}
	syms, err := elfSymbols(ef)
	if err != nil {
		return nil, fmt.Errorf("read ELF %s: %w", path, err)
	}
	if !hasSection(ef, ".symtab") {
		// A stripped file: the full table may be in a separate debug file.
		if dbg := elfDebugFile(ef, path, debugDirs); dbg != "" {
			if df, err := elf.Open(dbg); err == nil {
				if more, err := elfSymbols(df); err == nil {
					syms = append(more, syms...)
				}
				df.Close()
			}
		}
	}
	// A Go binary linked with -s (go test, go run do so) has no .symtab, but
	// its pclntab names every Go function.
	var gotab *gosym.Table
	if !hasSection(ef, ".symtab") {
		if gotab, _ = elfGoTable(ef); gotab != nil {
			syms = append(syms, goSymbols(gotab)...)
		}
	}
	o.syms = NewSymbolTable(syms)
	o.lines.load = func() (lineSource, error) {
		if loadDWARF == nil {
			return nil, fmt.Errorf("%s: %w", path, errNoDebugInfo)
		}
		d, err := loadDWARF()
		if err == nil {
			return newDwarfLines(d), nil
		}
		// No DWARF (-w): a Go binary still has its pclntab.
		if gotab != nil {
			return goLines{gotab}, nil
		}
		if ef, ferr := elf.Open(path); ferr == nil {
			defer ef.Close()
			if t, gerr := elfGoTable(ef); gerr == nil {
				return goLines{t}, nil
			}
		}
		return nil, err
	}
	return o, nil
}

// elfGoTable parses the Go pclntab of ef, or fails when it has none.
func elfGoTable(ef *elf.File) (*gosym.Table, error) {
	pcln, text := ef.Section(".gopclntab"), ef.Section(".text")
	if pcln == nil || text == nil {
		return nil, errNoDebugInfo
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, fmt.Errorf("read .gopclntab: %w", err)
	}
	return goTable(data, text.Addr)
}

var errNoDebugInfo = errors.New("no debug information")

func hasSection(ef *elf.File, name string) bool { return ef.Section(name) != nil }

// elfDWARF reads the DWARF of the ELF file at path, or of its separate debug
// file.
func elfDWARF(path string, debugDirs []string) (*dwarf.Data, error) {
	ef, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read DWARF: %w", err)
	}
	defer ef.Close()
	if hasSection(ef, ".debug_info") || hasSection(ef, ".zdebug_info") {
		d, err := ef.DWARF()
		if err != nil {
			return nil, fmt.Errorf("read DWARF of %s: %w", path, err)
		}
		return d, nil
	}
	dbg := elfDebugFile(ef, path, debugDirs)
	if dbg == "" {
		return nil, fmt.Errorf("%s: %w", path, errNoDebugInfo)
	}
	df, err := elf.Open(dbg)
	if err != nil {
		return nil, fmt.Errorf("read DWARF: %w", err)
	}
	defer df.Close()
	d, err := df.DWARF()
	if err != nil {
		return nil, fmt.Errorf("read DWARF of %s: %w", dbg, err)
	}
	return d, nil
}

// elfDebugFile returns the path of the separate debug file of ef (read from
// path), or "" when there is none. Like gdb, it looks first by build id
// (DIR/.build-id/ab/cdef....debug) and then by .gnu_debuglink name, next to
// the file, in its .debug folder and under each DIR.
func elfDebugFile(ef *elf.File, path string, dirs []string) string {
	var candidates []string
	if id := elfBuildID(ef); len(id) >= 2 {
		h := hex.EncodeToString(id)
		for _, d := range dirs {
			candidates = append(candidates, filepath.Join(d, ".build-id", h[:2], h[2:]+".debug"))
		}
	}
	if link := elfDebugLink(ef); link != "" && path != "" {
		dir := filepath.Dir(path)
		candidates = append(candidates, filepath.Join(dir, link), filepath.Join(dir, ".debug", link))
		for _, d := range dirs {
			candidates = append(candidates, filepath.Join(d, dir, link))
		}
	}
	for _, c := range candidates {
		if c == path {
			continue
		}
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// elfDebugLink returns the file name in ef's .gnu_debuglink section, or "".
func elfDebugLink(ef *elf.File) string {
	s := ef.Section(".gnu_debuglink")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil {
		return ""
	}
	name, _, ok := strings.Cut(string(data), "\x00")
	if !ok || strings.ContainsRune(name, '/') {
		return ""
	}
	return name
}

// elfBuildID returns the GNU build id of ef, or nil.
func elfBuildID(ef *elf.File) []byte {
	s := ef.Section(".note.gnu.build-id")
	if s == nil {
		return nil
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		return nil
	}
	bo := ef.ByteOrder
	namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
	nameEnd := 12 + (uint64(namesz)+3)&^3
	if typ != 3 || nameEnd+uint64(descsz) > uint64(len(data)) { // NT_GNU_BUILD_ID
		return nil
	}
	return data[nameEnd : nameEnd+uint64(descsz)]
}

// elfSymbols collects the function, object and code-label symbols of .symtab
// and .dynsym, best names first: functions before labels and objects, fewer
// leading underscores first (getpid before __getpid), global before weak
// before local.
func elfSymbols(ef *elf.File) ([]Symbol, error) {
	type ranked struct {
		Symbol
		rank [3]int
	}
	var all []ranked
	seen := make(map[Symbol]bool)
	for _, get := range []func() ([]elf.Symbol, error){ef.Symbols, ef.DynamicSymbols} {
		syms, err := get()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("symbols: %w", err)
		}
		for _, s := range syms {
			kind, ok := elfSymbolKind(ef, s)
			if !ok {
				continue
			}
			sym := Symbol{Name: s.Name, Start: s.Value, Size: s.Size}
			if sym.Size == 0 {
				// Bound the guess by the symbol's section; NewSymbolTable
				// shortens it to the next symbol.
				if sec := ef.Sections[s.Section]; sec.Addr+sec.Size > s.Value {
					sym.Size, sym.Guessed = sec.Addr+sec.Size-s.Value, true
				}
			}
			if seen[sym] {
				continue
			}
			seen[sym] = true
			bind := 0
			switch elf.ST_BIND(s.Info) {
			case elf.STB_WEAK:
				bind = 1
			case elf.STB_LOCAL:
				bind = 2
			}
			under := len(s.Name) - len(strings.TrimLeft(s.Name, "_"))
			all = append(all, ranked{sym, [3]int{kind, under, bind}})
		}
	}
	// Order by address, then rank (NewSymbolTable keeps the first of an
	// address), sorting indices rather than the large records.
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &all[i], &all[j]
		return cmp.Or(cmp.Compare(a.Start, b.Start),
			cmp.Compare(a.rank[0], b.rank[0]), cmp.Compare(a.rank[1], b.rank[1]), cmp.Compare(a.rank[2], b.rank[2]),
			cmp.Compare(i, j))
	})
	out := make([]Symbol, len(all))
	for i, k := range order {
		out[i] = all[k].Symbol
	}
	return out, nil
}

// elfSymbolKind says whether s names code or data worth keeping, and ranks
// it: 0 for functions, 1 for labels in executable sections, 2 for objects.
func elfSymbolKind(ef *elf.File, s elf.Symbol) (int, bool) {
	if s.Name == "" || s.Value == 0 || s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE || int(s.Section) >= len(ef.Sections) {
		return 0, false
	}
	switch elf.ST_TYPE(s.Info) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return 0, true
	case elf.STT_NOTYPE:
		// Mapping symbols ($x, $d) and assembler locals (.L) are no names.
		if strings.HasPrefix(s.Name, "$") || strings.HasPrefix(s.Name, ".L") {
			return 0, false
		}
		if ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR == 0 {
			return 0, false
		}
		return 1, true
	case elf.STT_OBJECT:
		return 2, true
	}
	return 0, false
}

// bias returns the load bias of the mapping im: runtime address minus
// link-time address. An ET_EXEC file is not relocated. For a position
// independent file, the PT_LOAD segment that holds the mapping's file offset
// (among those whose permissions match the mapping's) places it.
func (o *elfObject) bias(im Image) (uint64, error) {
	if o.typ == elf.ET_EXEC {
		return 0, nil
	}
	wantX, wantW := strings.Contains(im.Perms, "x"), strings.Contains(im.Perms, "w")
	best, bestScore := -1, -1
	for i, p := range o.loads {
		if p.Filesz == 0 || im.Offset >= p.Off+p.Filesz {
			continue
		}
		score := 0
		switch {
		case p.Off <= im.Offset:
			score = 4 // the segment starts at or before the mapping
		case p.Off&^0xffff <= im.Offset:
			score = 2 // the mapping was rounded down to a page below the segment
		default:
			continue
		}
		if im.Perms != "" && (p.Flags&elf.PF_X != 0) == wantX && (p.Flags&elf.PF_W != 0) == wantW {
			score += 8
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		if im.Base != 0 && len(o.loads) > 0 {
			p := o.loads[0]
			return im.Base - (p.Vaddr - p.Off), nil
		}
		return 0, fmt.Errorf("%s: no loadable segment holds file offset %#x", o.path, im.Offset)
	}
	// Within a segment, link-time address minus file offset is constant.
	p := o.loads[best]
	return im.Start - (p.Vaddr - p.Off + im.Offset), nil
}
