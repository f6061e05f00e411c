package tracer

import (
	"bytes"
	"cmp"
	"debug/dwarf"
	"debug/gosym"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Symbol is a named address range of an image or a kernel.
type Symbol struct {
	Name  string // display name (Mach-O: without the leading underscore)
	Raw   string // name as spelled in the file when it differs from Name, else ""
	Start uint64 // first address, in the table's own (link-time) address space
	// Size is the symbol's size in bytes. When the file gives none,
	// NewSymbolTable infers it from the next symbol and sets Guessed; the
	// last symbol of a table may keep a zero Size, and then it extends to
	// the end of whatever range the table covers.
	Size    uint64
	Guessed bool // Size was inferred, not read from the file
}

// RawName returns the symbol's name as spelled in the file.
func (s Symbol) RawName() string {
	if s.Raw != "" {
		return s.Raw
	}
	return s.Name
}

// End returns one past the symbol's last address, or 0 when the size is
// unknown.
func (s Symbol) End() uint64 {
	if s.Size == 0 {
		return 0
	}
	return s.Start + s.Size
}

// contains reports whether addr falls inside s; a symbol of unknown size
// contains every address from its start on.
func (s Symbol) contains(addr uint64) bool {
	return addr >= s.Start && (s.Size == 0 || addr-s.Start < s.Size)
}

// SymbolTable is an immutable set of symbols sorted by address, with lookup by
// address (binary search) and by name. It is safe for concurrent use.
type SymbolTable struct {
	syms    []Symbol // one per address, sorted by Start
	aliases []Symbol // further names for addresses in syms, for name lookup

	nameOnce sync.Once
	byName   map[string]int // index into syms, or len(syms)+index into aliases
}

// NewSymbolTable builds a table from syms, which it does not keep. When
// several symbols share an address, the first one with a size read from the
// file wins the address (or simply the first one when none has one); the
// others stay reachable by name. A zero size is inferred as the distance to
// the next symbol, and a guessed size never reaches past the next symbol.
func NewSymbolTable(syms []Symbol) *SymbolTable {
	// Sort indices, not 56-byte symbols: a stable order by address, cheaply.
	order := make([]int, len(syms))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Or(cmp.Compare(syms[a].Start, syms[b].Start), cmp.Compare(a, b)) })
	t := &SymbolTable{syms: make([]Symbol, 0, len(syms))}
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && syms[order[j]].Start == syms[order[i]].Start {
			j++
		}
		best := order[i]
		for _, k := range order[i:j] {
			if syms[k].Size != 0 && !syms[k].Guessed {
				best = k
				break
			}
		}
		t.syms = append(t.syms, syms[best])
		for _, k := range order[i:j] {
			if k != best && syms[k].Name != syms[best].Name {
				t.aliases = append(t.aliases, syms[k])
			}
		}
		i = j
	}
	for i := range t.syms {
		if i+1 == len(t.syms) {
			break
		}
		sym, gap := &t.syms[i], t.syms[i+1].Start-t.syms[i].Start
		if sym.Size == 0 || (sym.Guessed && sym.Size > gap) {
			sym.Size, sym.Guessed = gap, true
		}
	}
	return t
}

// Len returns the number of distinct symbol addresses.
func (t *SymbolTable) Len() int { return len(t.syms) }

// Symbols returns the symbols sorted by address, one per address. The slice
// must not be modified.
func (t *SymbolTable) Symbols() []Symbol { return t.syms }

// Lookup returns the symbol containing addr. An address past the end of a
// symbol with a known size belongs to no symbol, unless an enclosing symbol
// that starts earlier covers it.
func (t *SymbolTable) Lookup(addr uint64) (Symbol, bool) {
	i, ok := t.index(addr)
	if !ok {
		return Symbol{}, false
	}
	return t.syms[i], true
}

func (t *SymbolTable) index(addr uint64) (int, bool) {
	if t == nil {
		return 0, false
	}
	// The last symbol starting at or before addr.
	i, found := slices.BinarySearchFunc(t.syms, addr, func(s Symbol, a uint64) int { return cmp.Compare(s.Start, a) })
	if !found {
		i--
	}
	// Look a few symbols back for one that encloses addr (a function with a
	// nested label, say).
	for k := i; k >= 0 && k > i-4; k-- {
		if t.syms[k].contains(addr) {
			return k, true
		}
	}
	return 0, false
}

// LookupName returns the symbol with the given name (display or raw).
func (t *SymbolTable) LookupName(name string) (Symbol, bool) {
	if t == nil {
		return Symbol{}, false
	}
	t.nameOnce.Do(t.buildNames)
	i, ok := t.byName[name]
	if !ok {
		return Symbol{}, false
	}
	if i < len(t.syms) {
		return t.syms[i], true
	}
	a := t.aliases[i-len(t.syms)]
	// An alias has the size of the symbol that owns its address.
	if j, ok := t.index(a.Start); ok && t.syms[j].Start == a.Start {
		a.Size, a.Guessed = t.syms[j].Size, t.syms[j].Guessed
	}
	return a, true
}

func (t *SymbolTable) buildNames() {
	t.byName = make(map[string]int, len(t.syms)+len(t.aliases))
	add := func(name string, i int) {
		if _, dup := t.byName[name]; !dup && name != "" {
			t.byName[name] = i
		}
	}
	for i, s := range t.syms {
		add(s.Name, i)
	}
	for i, s := range t.aliases {
		add(s.Name, len(t.syms)+i)
	}
	for i, s := range t.syms {
		add(s.Raw, i)
	}
	for i, s := range t.aliases {
		add(s.Raw, len(t.syms)+i)
	}
}

// CodeLocation is what the symbolizer knows about one address.
type CodeLocation struct {
	Addr     uint64 // the address looked up
	Func     string // name of the enclosing symbol; "" when unknown
	FuncAddr uint64 // runtime address of the symbol's first byte
	Offset   uint64 // Addr - FuncAddr
	Image    string // path of the image or table that contains Addr; "" when none does
	// ImageAddr is Addr relative to the image: the link-time address (what
	// addr2line and objdump expect) when the image's file could be read,
	// else the file offset.
	ImageAddr uint64
	File      string // source file, when lines were asked for and known
	Line      int    // source line, or 0
	// Inlined marks a function whose code the compiler inlined into the
	// function of the next location (see LookupInline); FuncAddr and
	// Offset are zero then.
	Inlined bool
}

// Known reports whether a symbol was found for the address.
func (l CodeLocation) Known() bool { return l.Func != "" }

// ImageName returns the base name of the image ("libc.so.6", "[vdso]").
func (l CodeLocation) ImageName() string {
	if l.Image == "" || strings.HasPrefix(l.Image, "[") {
		return l.Image
	}
	return filepath.Base(l.Image)
}

// String formats the location for display: "main.run+0x1c" when the symbol is
// known, "libc.so.6+0x1234" when only the image is, else "0x7ffc1234".
func (l CodeLocation) String() string {
	switch {
	case l.Func != "" && l.Offset == 0:
		return l.Func
	case l.Func != "":
		return l.Func + "+0x" + strconv.FormatUint(l.Offset, 16)
	case l.Image != "":
		return l.ImageName() + "+0x" + strconv.FormatUint(l.ImageAddr, 16)
	}
	return "0x" + strconv.FormatUint(l.Addr, 16)
}

// FileLine returns "file:line", or "" when the line is unknown.
func (l CodeLocation) FileLine() string {
	if l.File == "" {
		return ""
	}
	return l.File + ":" + strconv.Itoa(l.Line)
}

// ErrNoSymbol means no symbol of that name is known.
var ErrNoSymbol = errors.New("no such symbol")

// object is a loaded image file: its symbols, how to place it in memory, and
// its source lines.
type object interface {
	table() *SymbolTable
	// bias returns the value to add to a link-time address to get the
	// runtime address in the given mapping.
	bias(im Image) (uint64, error)
	// line returns the source position of a link-time address.
	line(addr uint64) (file string, line int, ok bool)
	// inlined returns the inlined calls at a link-time address, outermost
	// first.
	inlined(addr uint64) []inlineRange
}

// tableObject is an object with symbols only (an external table).
type tableObject struct{ t *SymbolTable }

func (o tableObject) table() *SymbolTable             { return o.t }
func (o tableObject) bias(Image) (uint64, error)      { return 0, nil }
func (o tableObject) line(uint64) (string, int, bool) { return "", 0, false }
func (o tableObject) inlined(uint64) []inlineRange    { return nil }

// loadedFile caches one file's object, loaded at most once.
type loadedFile struct {
	once sync.Once
	load func()
	obj  object
	err  error
}

func (f *loadedFile) get() (object, error) {
	f.once.Do(f.load)
	return f.obj, f.err
}

// mapping is one image of the symbolizer's list, or an external table.
type mapping struct {
	Image
	// anchor is the mapping the load bias is computed from: the nearest
	// executable mapping of the same file, whose segment is unambiguous (a
	// RELRO or data mapping's file offset may fall in two segments).
	anchor Image
	file   *loadedFile
	loaded bool   // bias and obj are set (or failed)
	obj    object // nil when the file could not be read
	bias   uint64
}

// SymbolizerOptions configure a Symbolizer. The zero value is usable.
type SymbolizerOptions struct {
	// ReadMemory reads the target's memory. When set, images that exist
	// only in memory ([vdso]) are read through it.
	ReadMemory func(addr uint64, p []byte) (int, error)
	// Root is prepended to image paths when opening files, for a target in
	// another mount namespace ("/proc/1234/root") or a sysroot.
	Root string
	// DebugDirs are the folders searched for separate debug files (by build
	// id and by .gnu_debuglink), like gdb's debug-file-directory. nil means
	// /usr/lib/debug. Under Root, each is searched inside Root first.
	DebugDirs []string
	// Arch selects the slice of a universal (fat) Mach-O file. ArchUnknown
	// means the host's architecture if the file has it, else the first
	// amd64 or arm64 slice.
	Arch Arch
}

// Symbolizer maps a target's addresses to symbols and source lines, and names
// back to addresses. It loads each image's file lazily, once, and remembers
// every address it has resolved. It is safe for concurrent use.
type Symbolizer struct {
	opts SymbolizerOptions

	mu      sync.Mutex
	maps    []*mapping // images sorted by Start
	tables  []*mapping // external tables, in the order added
	files   map[string]*loadedFile
	cache   map[uint64]*cached
	loadErr map[string]error
}

type cached struct {
	loc     CodeLocation
	lines   bool           // loc.File and loc.Line have been looked up
	inlines []CodeLocation // LookupInline's answer, once asked for
}

// NewSymbolizer returns a symbolizer for a target with the given images
// (Target.Images). opts may be nil.
func NewSymbolizer(images []Image, opts *SymbolizerOptions) *Symbolizer {
	s := &Symbolizer{files: make(map[string]*loadedFile), cache: make(map[uint64]*cached), loadErr: make(map[string]error)}
	if opts != nil {
		s.opts = *opts
	}
	s.SetImages(images)
	return s
}

// NewSymbolizerFor returns a symbolizer for t's current images, reading
// in-memory images through t. For a local Linux process in another mount
// namespace (a container), image files are opened through /proc/PID/root.
func NewSymbolizerFor(t Target) (*Symbolizer, error) {
	images, err := t.Images()
	if err != nil {
		return nil, fmt.Errorf("symbolizer for %s: %w", t.Describe(), err)
	}
	opts := &SymbolizerOptions{ReadMemory: t.ReadMemory, Arch: t.Arch()}
	if pid := PIDOf(t); pid > 0 && runtime.GOOS == "linux" {
		self, err1 := os.Readlink("/proc/self/ns/mnt")
		theirs, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if err1 == nil && err2 == nil && self != theirs {
			opts.Root = fmt.Sprintf("/proc/%d/root", pid)
		}
	}
	return NewSymbolizer(images, opts), nil
}

// SetImages replaces the image list (after the target loaded or unloaded a
// library). Files already read are kept; remembered addresses are forgotten.
func (s *Symbolizer) SetImages(images []Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maps = s.maps[:0]
	for _, im := range images {
		if im.End <= im.Start {
			continue
		}
		m := &mapping{Image: im}
		if p := imagePath(im.Path); p != "" {
			m.file = s.fileFor(p, im)
		}
		s.maps = append(s.maps, m)
	}
	slices.SortStableFunc(s.maps, func(a, b *mapping) int { return cmp.Compare(a.Start, b.Start) })
	for _, m := range s.maps {
		m.anchor = m.Image
		if m.file == nil || strings.Contains(m.Perms, "x") {
			continue
		}
		best := ^uint64(0)
		for _, x := range s.maps {
			if x.Path == m.Path && strings.Contains(x.Perms, "x") {
				if d := max(x.Start, m.Start) - min(x.Start, m.Start); d < best {
					best, m.anchor = d, x.Image
				}
			}
		}
	}
	clear(s.cache)
}

// AddTable adds an external symbol table (a kernel's kallsyms or System.map)
// that covers the addresses [start, end); end 0 means no upper bound. The
// runtime address of a symbol is its table address plus bias. path names the
// table in locations ("vmlinux", "[kernel.kallsyms]"). Tables take
// precedence over images.
func (s *Symbolizer) AddTable(start, end, bias uint64, path string, t *SymbolTable) {
	if end == 0 {
		end = ^uint64(0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables = append(s.tables, &mapping{
		Image:  Image{Path: path, Start: start, End: end},
		loaded: true, obj: tableObject{t}, bias: bias,
	})
	clear(s.cache)
}

// AddFile adds the symbols and lines of the ELF or Mach-O file at path for the
// addresses [start, end) (end 0: no upper bound), placed at the given bias:
// runtime address minus link-time address. This is how a kernel image
// (vmlinux, an XNU kernel) joins the symbolizer once its KASLR slide is
// known. Files take precedence over images, like tables.
func (s *Symbolizer) AddFile(path string, start, end, bias uint64) error {
	if end == 0 {
		end = ^uint64(0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, err := s.fileFor(path, Image{Path: path}).get()
	if err != nil {
		return fmt.Errorf("add symbols of %s: %w", path, err)
	}
	s.tables = append(s.tables, &mapping{
		Image:  Image{Path: path, Start: start, End: end},
		loaded: true, obj: obj, bias: bias,
	})
	clear(s.cache)
	return nil
}

// imagePath returns the path of a file-backed image, the pseudo path of an
// image the symbolizer can read from memory, or "".
func imagePath(p string) string {
	p = strings.TrimSuffix(p, " (deleted)")
	switch {
	case p == "[vdso]":
		return p
	case p == "" || strings.HasPrefix(p, "[") || strings.HasPrefix(p, "anon_inode:"):
		return ""
	case strings.HasPrefix(p, "/memfd:") || strings.HasPrefix(p, "/dev/"):
		return ""
	}
	return p
}

// fileFor returns the cached loader of the file at path. s.mu is held.
func (s *Symbolizer) fileFor(path string, im Image) *loadedFile {
	if f, ok := s.files[path]; ok {
		return f
	}
	f := &loadedFile{}
	f.load = func() {
		f.obj, f.err = s.loadObject(path, im)
		if f.err != nil {
			s.loadErr[path] = f.err
		}
	}
	s.files[path] = f
	return f
}

// loadObject reads the file at path (or, for [vdso], the mapping im from
// memory) and recognises its format.
func (s *Symbolizer) loadObject(path string, im Image) (object, error) {
	if path == "[vdso]" {
		read := s.opts.ReadMemory
		if read == nil {
			return nil, fmt.Errorf("%s: in-memory image and no memory reader", path)
		}
		if im.End-im.Start > 1<<24 {
			return nil, fmt.Errorf("%s: mapping of %d bytes is too large to read", path, im.End-im.Start)
		}
		buf := make([]byte, im.End-im.Start)
		n, err := read(im.Start, buf)
		if err != nil && n == 0 {
			return nil, fmt.Errorf("read %s at %#x: %w", path, im.Start, err)
		}
		return newELFObject(path, bytes.NewReader(buf[:n]), nil, nil)
	}
	full := path
	if s.opts.Root != "" {
		full = filepath.Join(s.opts.Root, path)
	}
	f, err := os.Open(full)
	if err != nil {
		// A Mach-O image with no file (the dyld shared cache's) can still
		// be read from memory, from its mach_header on.
		if errors.Is(err, fs.ErrNotExist) && s.opts.ReadMemory != nil && im.Base != 0 {
			if o, merr := newMachOMemObject(path, im.Base, s.opts.ReadMemory); merr == nil {
				return o, nil
			}
		}
		return nil, fmt.Errorf("open image: %w", err)
	}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", full, err)
	}
	switch {
	case string(magic[:]) == "\x7fELF":
		return openELFObject(full, f, s.debugDirs())
	case isMachOMagic(magic):
		return openMachOObject(full, f, s.opts.Arch)
	}
	f.Close()
	return nil, fmt.Errorf("%s: %w (magic % x)", full, errUnknownFormat, magic)
}

var errUnknownFormat = errors.New("not an ELF or Mach-O file")

// debugDirs returns the folders to search for separate debug files.
func (s *Symbolizer) debugDirs() []string {
	dirs := s.opts.DebugDirs
	if dirs == nil {
		dirs = defaultDebugDirs
	}
	if s.opts.Root == "" {
		return dirs
	}
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Join(s.opts.Root, d), d)
	}
	return out
}

// LoadErrors returns the errors met while reading image files so far, one per
// file, so a caller can say why some addresses stay unnamed.
func (s *Symbolizer) LoadErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range slices.Sorted(mapKeys(s.loadErr)) {
		errs = append(errs, fmt.Errorf("symbols for %s: %w", p, s.loadErr[p]))
	}
	return errs
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// prepare loads m's object and bias once. s.mu is held.
func (s *Symbolizer) prepare(m *mapping) {
	if m.loaded {
		return
	}
	m.loaded = true
	if m.file == nil {
		return
	}
	obj, err := m.file.get()
	if err != nil {
		return
	}
	b, err := obj.bias(m.anchor)
	if err != nil {
		s.loadErr[m.Path] = err
		return
	}
	m.obj, m.bias = obj, b
}

// find returns the table or image that contains addr. s.mu is held.
func (s *Symbolizer) find(addr uint64) *mapping {
	for _, m := range s.tables {
		if m.Contains(addr) {
			return m
		}
	}
	i, found := slices.BinarySearchFunc(s.maps, addr, func(m *mapping, a uint64) int { return cmp.Compare(m.Start, a) })
	if !found {
		i--
	}
	if i >= 0 && s.maps[i].Contains(addr) {
		return s.maps[i]
	}
	return nil
}

// Lookup symbolizes addr without source lines.
func (s *Symbolizer) Lookup(addr uint64) CodeLocation { return s.lookup(addr, false) }

// LookupLine symbolizes addr with its source file and line, reading the
// image's debug information the first time it is needed.
func (s *Symbolizer) LookupLine(addr uint64) CodeLocation { return s.lookup(addr, true) }

func (s *Symbolizer) lookup(addr uint64, lines bool) CodeLocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(addr, lines).loc
}

// lookupLocked returns the cache entry of addr, filled at least as far as
// asked. s.mu is held.
func (s *Symbolizer) lookupLocked(addr uint64, lines bool) *cached {
	c, ok := s.cache[addr]
	if ok && (c.lines || !lines) {
		return c
	}
	m := s.find(addr)
	if !ok {
		c = &cached{loc: s.resolve(m, addr)}
		s.cache[addr] = c
	}
	if lines {
		c.lines = true
		if m != nil && m.obj != nil {
			c.loc.File, c.loc.Line, _ = m.obj.line(addr - m.bias)
		}
	}
	return c
}

// LookupInline symbolizes addr with its source line and the calls the
// compiler inlined there: the innermost inlined function first (Inlined
// set, at addr's own line), then each caller at the line of its call, and
// last the function that holds the code, as Lookup names it. With nothing
// inlined, or no DWARF to tell, it returns LookupLine's location alone.
// The slice must not be modified.
func (s *Symbolizer) LookupInline(addr uint64) []CodeLocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookupLocked(addr, true)
	if c.inlines != nil {
		return c.inlines
	}
	var chain []inlineRange
	if m := s.find(addr); m != nil && m.obj != nil {
		chain = m.obj.inlined(addr - m.bias)
	}
	frames := make([]CodeLocation, 0, len(chain)+1)
	file, line := c.loc.File, c.loc.Line
	for i := len(chain) - 1; i >= 0; i-- {
		frames = append(frames, CodeLocation{
			Addr: addr, Func: chain[i].name, Image: c.loc.Image, ImageAddr: c.loc.ImageAddr,
			File: file, Line: line, Inlined: true,
		})
		file, line = chain[i].callFile, chain[i].callLine
	}
	outer := c.loc
	outer.File, outer.Line = file, line
	c.inlines = append(frames, outer)
	return c.inlines
}

// resolve symbolizes addr in m (which may be nil). s.mu is held.
func (s *Symbolizer) resolve(m *mapping, addr uint64) CodeLocation {
	loc := CodeLocation{Addr: addr}
	if m == nil {
		return loc
	}
	s.prepare(m)
	loc.Image = m.Path
	if m.obj == nil {
		loc.ImageAddr = addr - m.Start + m.Offset
		return loc
	}
	loc.ImageAddr = addr - m.bias
	if sym, ok := m.obj.table().Lookup(addr - m.bias); ok {
		loc.Func = sym.Name
		loc.FuncAddr = sym.Start + m.bias
		loc.Offset = addr - loc.FuncAddr
	}
	return loc
}

// SymName returns "name" or "name+0x1c" for an address inside a known symbol.
// Its signature fits Disassemble.
func (s *Symbolizer) SymName(addr uint64) (string, bool) {
	loc := s.Lookup(addr)
	if !loc.Known() {
		return "", false
	}
	return loc.String(), true
}

// LookupName finds a symbol by name and returns it with Start moved to its
// runtime address. The name may be qualified by an image as "image!name",
// where image is a base name or a prefix of one ("libc!getpid"). Tables are
// searched first, then images in address order. The error wraps ErrNoSymbol
// when nothing matches.
func (s *Symbolizer) LookupName(name string) (Symbol, error) {
	image, sym := "", name
	if i := strings.LastIndexByte(name, '!'); i > 0 {
		image, sym = name[:i], name[i+1:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[object]bool)
	for _, m := range slices.Concat(s.tables, s.maps) {
		if image != "" && !strings.HasPrefix(CodeLocation{Image: m.Path}.ImageName(), image) {
			continue
		}
		s.prepare(m)
		if m.obj == nil || seen[m.obj] {
			continue
		}
		seen[m.obj] = true
		if found, ok := m.obj.table().LookupName(sym); ok {
			found.Start += m.bias
			return found, nil
		}
	}
	return Symbol{}, fmt.Errorf("symbol %q: %w", name, ErrNoSymbol)
}

// Addr returns the runtime address of the named symbol (see LookupName).
func (s *Symbolizer) Addr(name string) (uint64, error) {
	sym, err := s.LookupName(name)
	return sym.Start, err
}

// dwarfLines answers source-line and inlining queries from DWARF. It is not
// safe for concurrent use.
type dwarfLines struct {
	d       *dwarf.Data
	units   []dwarfUnit // sorted by lo
	cus     map[dwarf.Offset]*dwarfCU
	origins map[dwarf.Offset]string // names of abstract origins
}

type dwarfUnit struct {
	lo, hi uint64
	cu     *dwarf.Entry
}

// dwarfCU is what has been read of one compilation unit.
type dwarfCU struct {
	lr      *dwarf.LineReader // nil when the unit has no line table
	inlines []inlineRange     // read on first use
	inlDone bool
}

// inlineRange is one address range of an inlined call.
type inlineRange struct {
	lo, hi   uint64
	depth    int    // nesting depth of the DIE in its unit
	name     string // the inlined function
	callFile string // where it was called from
	callLine int
}

// newDwarfLines indexes the address ranges of d's compilation units.
func newDwarfLines(d *dwarf.Data) *dwarfLines {
	l := &dwarfLines{d: d, cus: make(map[dwarf.Offset]*dwarfCU), origins: make(map[dwarf.Offset]string)}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			ranges, err := d.Ranges(e)
			if err == nil {
				for _, rg := range ranges {
					if rg[1] > rg[0] {
						l.units = append(l.units, dwarfUnit{rg[0], rg[1], e})
					}
				}
			}
		}
		r.SkipChildren()
	}
	slices.SortFunc(l.units, func(a, b dwarfUnit) int { return cmp.Compare(a.lo, b.lo) })
	return l
}

// unitsAt calls f with each compilation unit whose ranges hold pc until f
// returns true.
func (l *dwarfLines) unitsAt(pc uint64, f func(e *dwarf.Entry, cu *dwarfCU) bool) {
	i, found := slices.BinarySearchFunc(l.units, pc, func(u dwarfUnit, a uint64) int { return cmp.Compare(u.lo, a) })
	if !found {
		i--
	}
	// Units rarely overlap: look a few back from the last one starting at
	// or before pc.
	for stop := i - 8; i >= 0 && i > stop; i-- {
		u := l.units[i]
		if pc >= u.hi {
			continue
		}
		cu, ok := l.cus[u.cu.Offset]
		if !ok {
			cu = &dwarfCU{}
			cu.lr, _ = l.d.LineReader(u.cu)
			l.cus[u.cu.Offset] = cu
		}
		if f(u.cu, cu) {
			return
		}
	}
}

// line returns the source position of pc.
func (l *dwarfLines) line(pc uint64) (file string, line int, ok bool) {
	l.unitsAt(pc, func(_ *dwarf.Entry, cu *dwarfCU) bool {
		var le dwarf.LineEntry
		if cu.lr == nil || cu.lr.SeekPC(pc, &le) != nil || le.File == nil {
			return false
		}
		file, line, ok = le.File.Name, le.Line, true
		return true
	})
	return file, line, ok
}

// inlined returns the inlined calls whose code holds pc, outermost first.
func (l *dwarfLines) inlined(pc uint64) []inlineRange {
	var chain []inlineRange
	l.unitsAt(pc, func(e *dwarf.Entry, cu *dwarfCU) bool {
		if !cu.inlDone {
			cu.inlDone = true
			cu.inlines = l.readInlines(e, cu)
		}
		for _, r := range cu.inlines {
			if pc >= r.lo && pc < r.hi {
				chain = append(chain, r)
			}
		}
		return len(chain) > 0
	})
	slices.SortStableFunc(chain, func(a, b inlineRange) int { return cmp.Compare(a.depth, b.depth) })
	return chain
}

// readInlines collects the inlined subroutines of one compilation unit.
func (l *dwarfLines) readInlines(cuEntry *dwarf.Entry, cu *dwarfCU) []inlineRange {
	var files []*dwarf.LineFile
	if cu.lr != nil {
		files = cu.lr.Files()
	}
	var out []inlineRange
	r := l.d.Reader()
	r.Seek(cuEntry.Offset)
	if e, err := r.Next(); err != nil || e == nil || !e.Children {
		return nil
	}
	for depth := 1; depth > 0; {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			continue
		}
		if e.Tag == dwarf.TagInlinedSubroutine {
			ranges, err := l.d.Ranges(e)
			if err == nil && len(ranges) > 0 {
				in := inlineRange{depth: depth, name: l.entryName(e, 4)}
				if i, ok := e.Val(dwarf.AttrCallFile).(int64); ok && i >= 0 && int(i) < len(files) && files[i] != nil {
					in.callFile = files[i].Name
				}
				if n, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
					in.callLine = int(n)
				}
				for _, rg := range ranges {
					in.lo, in.hi = rg[0], rg[1]
					out = append(out, in)
				}
			}
		}
		if e.Children {
			depth++
		}
	}
	return out
}

// entryName returns the name of a DIE, following abstract origins and
// specifications at most hops times.
func (l *dwarfLines) entryName(e *dwarf.Entry, hops int) string {
	if name, ok := e.Val(dwarf.AttrName).(string); ok {
		return name
	}
	if hops == 0 {
		return ""
	}
	for _, attr := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		off, ok := e.Val(attr).(dwarf.Offset)
		if !ok {
			continue
		}
		if name, ok := l.origins[off]; ok {
			return name
		}
		r := l.d.Reader()
		r.Seek(off)
		oe, err := r.Next()
		if err != nil || oe == nil {
			continue
		}
		name := l.entryName(oe, hops-1)
		l.origins[off] = name
		return name
	}
	return ""
}

// lineSource maps link-time addresses to source positions.
type lineSource interface {
	line(pc uint64) (file string, line int, ok bool)
}

// goLines answers source-line queries from a Go binary's pclntab, for Go
// binaries built without DWARF (go test, go run, -ldflags=-w).
type goLines struct{ t *gosym.Table }

func (g goLines) line(pc uint64) (string, int, bool) {
	file, line, fn := g.t.PCToLine(pc)
	return file, line, fn != nil && file != ""
}

// goTable parses a Go pclntab whose text starts at textStart.
func goTable(pclntab []byte, textStart uint64) (*gosym.Table, error) {
	t, err := gosym.NewTable(nil, gosym.NewLineTable(pclntab, textStart))
	if err != nil {
		return nil, fmt.Errorf("read Go pclntab: %w", err)
	}
	return t, nil
}

// goSymbols returns the functions of a Go pclntab as symbols.
func goSymbols(t *gosym.Table) []Symbol {
	out := make([]Symbol, 0, len(t.Funcs))
	for _, f := range t.Funcs {
		if f.End > f.Entry {
			out = append(out, Symbol{Name: f.Name, Start: f.Entry, Size: f.End - f.Entry})
		}
	}
	return out
}

// lazyLines loads line information on first use.
type lazyLines struct {
	once  sync.Once
	load  func() (lineSource, error)
	lines lineSource
	err   error
}

func (z *lazyLines) line(pc uint64) (string, int, bool) {
	z.once.Do(func() { z.lines, z.err = z.load() })
	if z.lines == nil {
		return "", 0, false
	}
	return z.lines.line(pc)
}

// inlined returns the inlined calls at pc, outermost first, when the line
// source knows them (DWARF does, a Go pclntab read by debug/gosym does not).
func (z *lazyLines) inlined(pc uint64) []inlineRange {
	z.once.Do(func() { z.lines, z.err = z.load() })
	if d, ok := z.lines.(*dwarfLines); ok {
		return d.inlined(pc)
	}
	return nil
}
