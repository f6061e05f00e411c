package tracer_test

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/tracer"
)

func TestSymbolTableLookup(t *testing.T) {
	tab := tracer.NewSymbolTable([]tracer.Symbol{
		{Name: "c", Start: 0x300},             // unknown size: up to the end
		{Name: "a", Start: 0x100, Size: 0x10}, // sized, with a hole after it
		{Name: "b", Start: 0x200},             // unknown size: up to c
		{Name: "alias_a", Start: 0x100},       // same address as a, no size
		{Name: "outer", Start: 0x400, Size: 0x100},
		{Name: "inner", Start: 0x420, Size: 0x10}, // nested in outer
	})
	tests := []struct {
		addr uint64
		want string // "" means no symbol
	}{
		{0x0ff, ""},
		{0x100, "a"},
		{0x10f, "a"},
		{0x110, ""}, // past a's end
		{0x200, "b"},
		{0x2ff, "b"},
		{0x300, "c"},
		{0x3ff, "c"},
		{0x420, "inner"},
		{0x430, "outer"}, // past inner, still in outer
		{0x4ff, "outer"},
		{0x500, ""},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatUint(tt.addr, 16), func(t *testing.T) {
			got, ok := tab.Lookup(tt.addr)
			if tt.want == "" {
				if ok {
					t.Fatalf("Lookup(%#x) = %q, want no symbol", tt.addr, got.Name)
				}
				return
			}
			if !ok || got.Name != tt.want {
				t.Fatalf("Lookup(%#x) = %q, %v; want %q", tt.addr, got.Name, ok, tt.want)
			}
		})
	}
	if b, _ := tab.LookupName("b"); b.Size != 0x100 || !b.Guessed {
		t.Errorf("b: size %#x guessed %v, want 0x100 guessed", b.Size, b.Guessed)
	}
	if a, ok := tab.LookupName("alias_a"); !ok || a.Start != 0x100 || a.Size != 0x10 {
		t.Errorf("alias_a = %+v, %v; want start 0x100 size 0x10", a, ok)
	}
	if _, ok := tab.LookupName("nope"); ok {
		t.Error("LookupName(nope) found something")
	}
	if n := tab.Len(); n != 5 {
		t.Errorf("Len = %d, want 5 (aliases share an address)", n)
	}
}

func TestCodeLocationString(t *testing.T) {
	s := tracer.NewSymbolizer([]tracer.Image{
		{Path: "/nonexistent/libfoo.so.1", Start: 0x10000, End: 0x20000, Offset: 0x3000, Perms: "r-xp"},
	}, nil)
	s.AddTable(0xfff00000, 0, 0x1000, "[kernel]", tracer.NewSymbolTable([]tracer.Symbol{
		{Name: "start_kernel", Start: 0xfffe0000, Size: 0x100},
		{Name: "linux_banner", Start: 0xfffe1000, Size: 0x80},
	}))
	tests := []struct {
		addr uint64
		want string
	}{
		{0x10234, "libfoo.so.1+0x3234"}, // file unreadable: file offset
		{0x5000, "0x5000"},
		{0xfffe1010, "start_kernel+0x10"},
		{0xfffe1000, "start_kernel"},
		{0xfffe2000, "linux_banner"},
		{0xfffe2100, "[kernel]+0xfffe1100"},
	}
	for _, tt := range tests {
		if got := s.Lookup(tt.addr).String(); got != tt.want {
			t.Errorf("Lookup(%#x) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if a, err := s.Addr("linux_banner"); err != nil || a != 0xfffe2000 {
		t.Errorf("Addr(linux_banner) = %#x, %v; want 0xfffe2000", a, err)
	}
	if _, err := s.Addr("no_such_thing"); !errors.Is(err, tracer.ErrNoSymbol) {
		t.Errorf("Addr(no_such_thing) error = %v, want ErrNoSymbol", err)
	}
	if errs := s.LoadErrors(); len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("LoadErrors = %v, want one not-exist error for libfoo", errs)
	}
}

// symTestMaps reads /proc/PID/maps (pid "self" for this process) as an image
// list.
func symTestMaps(t testing.TB, pid string) []tracer.Image {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/maps")
	if err != nil {
		t.Skipf("no /proc maps: %v", err)
	}
	defer f.Close()
	var images []tracer.Image
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 55d0c000-55d0d000 r-xp 00001000 08:01 1234    /path
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("maps line %q: %v", sc.Text(), err)
		}
		im := tracer.Image{Start: start, End: end, Offset: off, Perms: fields[1]}
		if len(fields) > 5 {
			im.Path = strings.Join(fields[5:], " ")
		}
		images = append(images, im)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return images
}

// symTestMemReader reads memory of process pid through /proc/PID/mem.
func symTestMemReader(t testing.TB, pid string) func(uint64, []byte) (int, error) {
	f, err := os.Open("/proc/" + pid + "/mem")
	if err != nil {
		t.Logf("no memory reader: %v", err)
		return nil
	}
	t.Cleanup(func() { f.Close() })
	return func(addr uint64, p []byte) (int, error) { return f.ReadAt(p, int64(addr)) }
}

//go:noinline
func symTestTarget(n int) int {
	for i := range n {
		n += i * 3
	}
	return n
}

// TestSymbolizeSelf symbolizes functions of the running test binary (a Go
// executable with .symtab and DWARF) at their runtime addresses.
func TestSymbolizeSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	s := tracer.NewSymbolizer(symTestMaps(t, "self"), &tracer.SymbolizerOptions{ReadMemory: symTestMemReader(t, "self")})
	for _, fn := range []any{symTestTarget, TestSymbolizeSelf, tracer.NewSymbolTable, strconv.Itoa, os.Open} {
		f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
		entry, name := uint64(f.Entry()), f.Name()
		t.Run(name, func(t *testing.T) {
			loc := s.LookupLine(entry)
			if loc.Func != name || loc.Offset != 0 || loc.FuncAddr != entry {
				t.Fatalf("Lookup(%#x) = %+v, want %s at offset 0", entry, loc, name)
			}
			wantFile, wantLine := f.FileLine(uintptr(entry))
			if loc.File != wantFile || loc.Line != wantLine {
				t.Errorf("line of %s = %s, want %s:%d", name, loc.FileLine(), wantFile, wantLine)
			}
			exe, _ := os.Executable()
			if loc.Image != exe && filepath.Base(loc.Image) != filepath.Base(exe) {
				t.Errorf("image = %q, want the test binary %q", loc.Image, exe)
			}
			if inside := s.Lookup(entry + 4); inside.Func != name || inside.Offset != 4 || inside.String() != name+"+0x4" {
				t.Errorf("Lookup(entry+4) = %q (%+v), want %s+0x4", inside, inside, name)
			}
			if a, err := s.Addr(name); err != nil || a != entry {
				t.Errorf("Addr(%s) = %#x, %v; want %#x", name, a, err, entry)
			}
		})
	}
	// A PC in the middle of a function gets the line the runtime gives it.
	pc, file, line, _ := runtime.Caller(0)
	if loc := s.LookupLine(uint64(pc)); loc.Func != "github.com/machtrace/machtrace/tracer_test.TestSymbolizeSelf" || loc.File != file || loc.Line != line {
		t.Errorf("LookupLine(caller pc) = %s %s, want TestSymbolizeSelf %s:%d", loc, loc.FileLine(), file, line)
	}
}

// TestSymbolizeVDSO reads the [vdso] image from memory.
func TestSymbolizeVDSO(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	images := symTestMaps(t, "self")
	var vdso tracer.Image
	for _, im := range images {
		if im.Path == "[vdso]" {
			vdso = im
		}
	}
	if vdso.End == 0 {
		t.Skip("no [vdso] mapping")
	}
	read := symTestMemReader(t, "self")
	if read == nil {
		t.Skip("cannot read /proc/self/mem")
	}
	s := tracer.NewSymbolizer(images, &tracer.SymbolizerOptions{ReadMemory: read})
	name := "__vdso_clock_gettime"
	if runtime.GOARCH == "arm64" {
		name = "__kernel_clock_gettime"
	}
	a, err := s.Addr("[vdso]!" + name)
	if err != nil {
		t.Fatalf("Addr: %v (load errors: %v)", err, s.LoadErrors())
	}
	if !vdso.Contains(a) {
		t.Fatalf("%s at %#x, outside [vdso] %#x-%#x", name, a, vdso.Start, vdso.End)
	}
	// The address, read back, is that function (or an alias of it).
	loc := s.Lookup(a + 1)
	if !strings.Contains(loc.Func, "clock_gettime") || loc.Offset != 1 || loc.Image != "[vdso]" {
		t.Errorf("Lookup(%#x) = %q in %q, want *clock_gettime+0x1 in [vdso]", a+1, loc, loc.Image)
	}
	// Cross-check with the ELF image read independently.
	buf := make([]byte, vdso.End-vdso.Start)
	if _, err := read(vdso.Start, buf); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(strings.NewReader(string(buf)))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ef.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, sym := range syms {
		if sym.Name == name {
			var first uint64 = ^uint64(0)
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD {
					first = min(first, p.Vaddr-p.Off)
				}
			}
			if want := sym.Value - first + vdso.Start; a != want {
				t.Errorf("Addr(%s) = %#x, want %#x", name, a, want)
			}
		}
	}
}

// BenchmarkSymbolizerLookup symbolizes PCs spread over the test binary's
// text: "cached" is the sampler's steady state (each unique PC resolved
// once), "uncached" and "lines-uncached" the first sight of a PC.
func BenchmarkSymbolizerLookup(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc/self/maps")
	}
	images := symTestMaps(b, "self")
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var pcs []uint64
	for _, im := range images {
		if im.Path == exe && strings.Contains(im.Perms, "x") {
			const n = 4096
			for i := range uint64(n) {
				pcs = append(pcs, im.Start+i*((im.End-im.Start)/n))
			}
		}
	}
	if len(pcs) == 0 {
		b.Skip("test binary's text not found in /proc/self/maps")
	}
	s := tracer.NewSymbolizer(images, nil)
	// Keep the PCs inside functions (not the ELF header or padding).
	pcs = slices.DeleteFunc(pcs, func(pc uint64) bool { return !s.LookupLine(pc).Known() })
	if len(pcs) < 1000 {
		b.Fatalf("only %d of 4096 PCs resolve", len(pcs))
	}
	b.Run("cached", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.Lookup(pcs[i%len(pcs)])
		}
	})
	for _, lines := range []bool{false, true} {
		name := "uncached"
		if lines {
			name = "lines-uncached"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if i%len(pcs) == 0 {
					b.StopTimer()
					s.SetImages(images) // forgets resolved PCs, keeps files
					b.StartTimer()
				}
				if lines {
					s.LookupLine(pcs[i%len(pcs)])
				} else {
					s.Lookup(pcs[i%len(pcs)])
				}
			}
		})
	}
}

func ExampleSymbolizer_AddTable() {
	// A kernel's symbols (from kallsyms or System.map), slid by KASLR.
	const slide = 0x1e00000
	kernel := tracer.NewSymbolTable([]tracer.Symbol{
		{Name: "_text", Start: 0xffffffff81000000},
		{Name: "start_kernel", Start: 0xffffffff82a0c000},
		{Name: "native_safe_halt", Start: 0xffffffff81a17a00},
		{Name: "_etext", Start: 0xffffffff82200000},
	})
	s := tracer.NewSymbolizer(nil, nil)
	s.AddTable(0xffffffff81000000+slide, 0xffffffff82200000+slide, slide, "[kernel.kallsyms]", kernel)

	fmt.Println(s.Lookup(0xffffffff81a17a0b + slide))
	addr, _ := s.Addr("start_kernel")
	fmt.Printf("%#x\n", addr)
	// Output:
	// native_safe_halt+0xb
	// 0xffffffff8480c000
}

// symTestBackend is this process seen as a target: images from
// /proc/self/maps, memory from /proc/self/mem. Only what NewSymbolizerFor
// uses works.
type symTestBackend struct {
	tb   testing.TB
	read func(uint64, []byte) (int, error)
}

func (b *symTestBackend) Arch() tracer.Arch {
	a, _ := tracer.ParseArch(runtime.GOARCH)
	return a
}
func (b *symTestBackend) Describe() string                  { return "self" }
func (b *symTestBackend) Threads() ([]tracer.Thread, error) { return nil, errors.ErrUnsupported }
func (b *symTestBackend) Stop() error                       { return errors.ErrUnsupported }
func (b *symTestBackend) Continue() error                   { return errors.ErrUnsupported }
func (b *symTestBackend) GetState(tracer.ThreadID, tracer.Flavor) (*tracer.Registers, error) {
	return nil, errors.ErrUnsupported
}
func (b *symTestBackend) SetState(tracer.ThreadID, *tracer.Registers) error {
	return errors.ErrUnsupported
}
func (b *symTestBackend) ReadMemory(addr uint64, p []byte) (int, error) { return b.read(addr, p) }
func (b *symTestBackend) WriteMemory(uint64, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
func (b *symTestBackend) Images() ([]tracer.Image, error) { return symTestMaps(b.tb, "self"), nil }
func (b *symTestBackend) Detach() error                   { return nil }

func TestNewSymbolizerFor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self")
	}
	read := symTestMemReader(t, "self")
	if read == nil {
		t.Skip("cannot read /proc/self/mem")
	}
	target := tracer.NewTarget(&symTestBackend{tb: t, read: read})
	s, err := tracer.NewSymbolizerFor(target)
	if err != nil {
		t.Fatal(err)
	}
	f := runtime.FuncForPC(reflect.ValueOf(symTestTarget).Pointer())
	if got := s.Lookup(uint64(f.Entry()) + 2).String(); got != f.Name()+"+0x2" {
		t.Errorf("Lookup = %q, want %s+0x2", got, f.Name())
	}
	// The target's memory reader reaches the [vdso].
	name := "__vdso_clock_gettime"
	if runtime.GOARCH == "arm64" {
		name = "__kernel_clock_gettime"
	}
	if _, err := s.Addr("[vdso]!" + name); err != nil {
		t.Errorf("vdso through the target: %v (load errors: %v)", err, s.LoadErrors())
	}
}

// TestSymbolizerConcurrent looks up, reverse-looks-up and replaces images
// from several goroutines at once (run with -race).
func TestSymbolizerConcurrent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	images := symTestMaps(t, "self")
	s := tracer.NewSymbolizer(images, nil)
	f := runtime.FuncForPC(reflect.ValueOf(symTestTarget).Pointer())
	entry, name := uint64(f.Entry()), f.Name()
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				switch {
				case g == 0 && i%50 == 0:
					s.SetImages(images)
				case i%3 == 0:
					if a, aerr := s.Addr(name); aerr != nil || a != entry {
						err = fmt.Errorf("Addr = %#x, %v", a, aerr)
					}
				default:
					if loc := s.LookupInline(entry + uint64(i%8)); loc[len(loc)-1].Func != name {
						err = fmt.Errorf("LookupInline = %v", loc)
					}
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// libcPath returns the path of the system's C library, or "".
func libcPath() string {
	for _, pattern := range []string{"/lib/*/libc.so.6", "/usr/lib/*/libc.so.6", "/lib64/libc.so.6", "/usr/lib64/libc.so.6"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// BenchmarkSymbolizerLoad measures the first lookup in a file: reading its
// symbols (libc: .dynsym; the test binary: its Go pclntab).
func BenchmarkSymbolizerLoad(b *testing.B) {
	exe, _ := os.Executable()
	for _, file := range []struct{ name, path, sym string }{
		{"libc", libcPath(), "getpid"},
		{"go-test-binary", exe, "runtime.main"},
	} {
		b.Run(file.name, func(b *testing.B) {
			if file.path == "" {
				b.Skip("not found")
			}
			for b.Loop() {
				s := tracer.NewSymbolizer(nil, nil)
				if err := s.AddFile(file.path, 0, 0, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Addr(file.sym); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
