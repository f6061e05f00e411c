package tracer_test

import (
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/tracer"
)

// machoTestProg is cross-compiled for darwin/arm64; helper opens on line 4
// and has small (line 6) inlined into it.
const machoTestProg = `package main

//go:noinline
func helper(n int) int { return small(n)*2 + 1 }

func small(x int) int { return x*x + 7 }

func main() { println(helper(3)) }
`

// machoTestBuild cross-compiles machoTestProg for darwin/arm64, with extra
// linker flags, and returns the binary's path.
func machoTestBuild(t *testing.T, ldflags string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("cross-compiles a darwin binary")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("no go tool: %v", err)
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "main.go"), filepath.Join(dir, "prog")
	if err := os.WriteFile(src, []byte(machoTestProg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "build", "-ldflags="+ldflags, "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cross-compiling for darwin/arm64 failed: %v\n%s", err, out)
	}
	return bin
}

// TestSymbolizeMachO loads a darwin/arm64 Go binary as if dyld had slid it,
// both by its mach_header address (Base) and by file offset alone.
func TestSymbolizeMachO(t *testing.T) {
	for _, tt := range []struct {
		name, ldflags string
		inlines       bool // DWARF tells of small inlined into helper
	}{
		{"dwarf", "", true},
		{"stripped-dwarf", "-w", false}, // lines from the Go pclntab
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := machoTestBuild(t, tt.ldflags)
			mf, err := macho.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			text := mf.Segment("__TEXT")
			// Go names its own symbols as they are; C-style ones carry the
			// usual leading underscore (__rt0_arm64_darwin is _rt0_arm64_darwin).
			var helper, rt0 uint64
			for _, s := range mf.Symtab.Syms {
				switch s.Name {
				case "main.helper":
					helper = s.Value
				case "__rt0_arm64_darwin":
					rt0 = s.Value
				}
			}
			if text == nil || helper == 0 || rt0 == 0 {
				t.Fatalf("no __TEXT, main.helper or __rt0_arm64_darwin in %s", bin)
			}
			const slide = 0x7654000
			start := text.Addr + slide
			for _, im := range []tracer.Image{
				{Path: bin, Start: start, End: start + text.Memsz, Perms: "r-x", Base: start},
				{Path: bin, Start: start, End: start + text.Memsz, Perms: "r-x"},
			} {
				s := tracer.NewSymbolizer([]tracer.Image{im}, &tracer.SymbolizerOptions{Arch: tracer.ArchARM64})
				pc := helper + slide
				loc := s.LookupLine(pc + 8)
				if loc.Func != "main.helper" || loc.Offset != 8 || loc.ImageAddr != helper+8 {
					t.Fatalf("Lookup(helper+8) = %q (%+v), want main.helper+0x8 (load errors: %v)", loc, loc, s.LoadErrors())
				}
				if entry := s.LookupLine(pc); filepath.Base(entry.File) != "main.go" || entry.Line != 4 {
					t.Errorf("line of helper = %q, want main.go:4", entry.FileLine())
				}
				for name, want := range map[string]uint64{
					"main.helper": pc, "prog!main.helper": pc,
					"_rt0_arm64_darwin": rt0 + slide, "__rt0_arm64_darwin": rt0 + slide,
				} {
					if a, err := s.Addr(name); err != nil || a != want {
						t.Errorf("Addr(%s) = %#x, %v; want %#x", name, a, err, want)
					}
				}
				if rt, _ := s.LookupName("_rt0_arm64_darwin"); rt.Raw != "__rt0_arm64_darwin" {
					t.Errorf("symbol = %+v, want raw name __rt0_arm64_darwin", rt)
				}
				if got := s.Lookup(rt0 + slide + 4).String(); got != "_rt0_arm64_darwin+0x4" {
					t.Errorf("Lookup(rt0+4) = %q, want _rt0_arm64_darwin+0x4", got)
				}
				sym, _ := s.LookupName("main.helper")
				if !sym.Guessed || sym.Size == 0 || sym.Size > 0x100 {
					t.Errorf("symbol = %+v, want a small guessed size", sym)
				}
				inlined := false
				for a := pc; a < pc+sym.Size; a += 4 {
					frames := s.LookupInline(a)
					if len(frames) == 2 && frames[0].Func == "main.small" && frames[0].Inlined && frames[0].Line == 6 &&
						frames[1].Func == "main.helper" && frames[1].Line == 4 && frames[1].Offset == a-pc {
						inlined = true
					}
				}
				if inlined != tt.inlines {
					t.Errorf("main.small seen inlined in main.helper: %v, want %v", inlined, tt.inlines)
				}
				// Disassemble helper from the file: arm64, and good
				// words up to its ret.
				sec := mf.Section("__text")
				data, err := sec.Data()
				if err != nil {
					t.Fatal(err)
				}
				code := data[helper-sec.Addr : helper-sec.Addr+sym.Size]
				insts := tracer.Disassemble(tracer.ArchARM64, code, pc, s.SymName)
				var texts []string
				for _, in := range insts {
					texts = append(texts, in.Text)
				}
				// The guessed size takes in the zero padding after ret,
				// which is no instruction.
				ret := slices.Index(texts, "ret")
				if ret < 0 || slices.Contains(texts[:ret], "(bad)") {
					t.Errorf("main.helper disassembles to:\n%s", strings.Join(texts, "\n"))
				}
			}

			// The same image with no file, as the dyld shared cache's
			// libraries are: read from (fake) memory, from its mach_header.
			// (A segment maps min(filesize, vmsize) bytes of the file; Go's
			// __DWARF has a vmsize of 0 and is not loaded at all.)
			read := func(addr uint64, p []byte) (int, error) {
				for _, l := range mf.Loads {
					seg, ok := l.(*macho.Segment)
					if !ok {
						continue
					}
					size := min(seg.Filesz, seg.Memsz)
					if addr < seg.Addr+slide || addr >= seg.Addr+slide+size {
						continue
					}
					n := min(uint64(len(p)), seg.Addr+slide+size-addr)
					return seg.ReadAt(p[:n], int64(addr-seg.Addr-slide))
				}
				return 0, tracer.ErrUnmapped
			}
			noFile := filepath.Join(t.TempDir(), "libnothere.dylib")
			s := tracer.NewSymbolizer([]tracer.Image{
				{Path: noFile, Start: start, End: start + text.Memsz, Perms: "r-x", Base: start},
			}, &tracer.SymbolizerOptions{ReadMemory: read})
			if loc := s.LookupLine(helper + slide + 8); loc.String() != "main.helper+0x8" || loc.ImageName() != "libnothere.dylib" || loc.File != "" {
				t.Errorf("from memory: Lookup(helper+8) = %q in %q at %q, want main.helper+0x8 in libnothere.dylib, no line (load errors: %v)",
					loc, loc.ImageName(), loc.FileLine(), s.LoadErrors())
			}
			if a, err := s.Addr("_rt0_arm64_darwin"); err != nil || a != rt0+slide {
				t.Errorf("from memory: Addr(_rt0_arm64_darwin) = %#x, %v; want %#x", a, err, rt0+slide)
			}
			if errs := s.LoadErrors(); len(errs) != 0 {
				t.Errorf("from memory: load errors %v", errs)
			}
		})
	}
}

// FuzzMachOMemory feeds arbitrary bytes to the in-memory Mach-O reader, as a
// damaged or hostile target would: it must not panic, and what it finds must
// resolve back to itself.
func FuzzMachOMemory(f *testing.F) {
	// A mach_header_64 with one LC_SYMTAB and no segments.
	hdr := []byte{
		0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x06, 0, 0, 0,
		0x01, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x02, 0, 0, 0, 0x18, 0, 0, 0, 0x40, 0, 0, 0, 0x01, 0, 0, 0, 0x50, 0, 0, 0, 0x10, 0, 0, 0,
	}
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, mem []byte) {
		const base = 0x10000
		read := func(addr uint64, p []byte) (int, error) {
			if addr < base || addr >= base+uint64(len(mem)) {
				return 0, tracer.ErrUnmapped
			}
			return copy(p, mem[addr-base:]), nil
		}
		s := tracer.NewSymbolizer([]tracer.Image{
			{Path: "/nonexistent/fuzz.dylib", Start: base, End: base + 0x10000, Base: base},
		}, &tracer.SymbolizerOptions{ReadMemory: read})
		for a := uint64(base); a < base+0x100; a += 0x10 {
			if loc := s.Lookup(a); loc.Known() {
				if got, err := s.Addr(loc.Func); err != nil {
					t.Fatalf("%s found at %#x but Addr fails: %v", loc.Func, a, err)
				} else if got > a {
					t.Fatalf("%s at %#x covers %#x", loc.Func, got, a)
				}
			}
		}
	})
}
