package tracer_test

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/tracer"
)

// elfTestProg prints the runtime addresses of a static function, of libc's
// getpid (through the GOT, so the real one), of main, of a variable in .data
// and of a constant table in .data.rel.ro (read-only after relocation, so in
// a mapping of its own), then waits for its standard input to close. Line 4
// opens work.
const elfTestProg = `#include <stdio.h>
#include <unistd.h>
int counter = 5; const char *const names[] = {"x", "y"};
static int work(int n) {
	int s = 0;
	for (int i = 0; i < n; i++) s += i * 3;
	return s;
}

int main(void) {
	printf("%p %p %p %p %p\n", (void *)work, (void *)getpid, (void *)main, (void *)&counter, (void *)names);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return work(getpid() & 7) == 12345;
}
`

// elfTestAddrs are the addresses elfTestProg prints.
type elfTestAddrs struct{ work, getpid, main, counter, names uint64 }

// elfTestRun builds elfTestProg as a PIE with DWARF, starts it and returns
// its pid, binary path and the addresses it printed.
func elfTestRun(t *testing.T) (pid, bin string, addrs elfTestAddrs) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "prog.c"), filepath.Join(dir, "prog")
	if err := os.WriteFile(src, []byte(elfTestProg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-g", "-O0", "-fPIE", "-pie", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc failed: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read addresses: %v", err)
	}
	var a []uint64
	for _, f := range strings.Fields(line) {
		v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("address %q: %v", f, err)
		}
		a = append(a, v)
	}
	if len(a) != 5 {
		t.Fatalf("program printed %q, want five addresses", line)
	}
	return strconv.Itoa(cmd.Process.Pid), bin, elfTestAddrs{a[0], a[1], a[2], a[3], a[4]}
}

// elfTestSymValue returns the link-time value of a symbol in an ELF file,
// read with debug/elf directly.
func elfTestSymValue(t *testing.T, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	dyn, _ := f.DynamicSymbols()
	for _, s := range append(syms, dyn...) {
		if s.Name == name && s.Value != 0 {
			return s.Value
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

// TestSymbolizePIE symbolizes a gcc-built PIE and its libc at their runtime
// addresses, with DWARF lines, and checks name -> address -> name.
func TestSymbolizePIE(t *testing.T) {
	pid, bin, addrs := elfTestRun(t)
	work, getpid, main := addrs.work, addrs.getpid, addrs.main
	images := symTestMaps(t, pid)
	s := tracer.NewSymbolizer(images, nil)

	// Data: .data in the read-write mapping, .data.rel.ro in the mapping
	// RELRO made read-only, whose file offset also falls in the read-only
	// segment before it.
	for name, a := range map[string]uint64{"counter": addrs.counter, "names": addrs.names} {
		if got := s.Lookup(a + 1).String(); got != name+"+0x1" {
			t.Errorf("Lookup(&%s+1 = %#x) = %q, want %s+0x1", name, a+1, got, name)
		}
	}

	loc := s.LookupLine(work)
	if loc.Func != "work" || loc.Offset != 0 || loc.Image != bin {
		t.Errorf("Lookup(work %#x) = %q in %q, want work in %s (load errors: %v)", work, loc, loc.Image, bin, s.LoadErrors())
	}
	if filepath.Base(loc.File) != "prog.c" || loc.Line != 4 {
		t.Errorf("line of work = %q, want prog.c:4", loc.FileLine())
	}
	if want := elfTestSymValue(t, bin, "work"); loc.ImageAddr != want {
		t.Errorf("ImageAddr of work = %#x, want its link-time address %#x", loc.ImageAddr, want)
	}
	if got := s.LookupLine(work + 4); got.Func != "work" || got.Offset != 4 || got.Line < 4 || got.Line > 7 {
		t.Errorf("Lookup(work+4) = %q at %s, want work+0x4 in lines 4-7", got, got.FileLine())
	}
	if got := s.Lookup(main).String(); got != "main" {
		t.Errorf("Lookup(main) = %q, want main", got)
	}
	for name, want := range map[string]uint64{"work": work, "prog!main": main, "main": main} {
		if a, err := s.Addr(name); err != nil || a != want {
			t.Errorf("Addr(%s) = %#x, %v; want %#x", name, a, err, want)
		}
	}

	// libc's getpid, from its runtime address.
	gl := s.Lookup(getpid)
	if gl.Func != "getpid" || gl.Offset != 0 || !strings.HasPrefix(gl.ImageName(), "libc") {
		t.Fatalf("Lookup(getpid %#x) = %q in %q, want getpid in libc", getpid, gl, gl.Image)
	}
	// Independently: the file's symbol value plus the libc's load bias
	// (where its file offset 0 is mapped, less the first segment's vaddr).
	libc := gl.Image
	var lowest uint64 = ^uint64(0)
	for _, im := range images {
		if im.Path == libc && im.Offset == 0 {
			lowest = min(lowest, im.Start)
		}
	}
	lf, err := elf.Open(libc)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	var firstVaddr uint64
	for _, p := range lf.Progs {
		if p.Type == elf.PT_LOAD {
			firstVaddr = p.Vaddr - p.Off
			break
		}
	}
	if want := elfTestSymValue(t, libc, "getpid") + lowest - firstVaddr; want != getpid {
		t.Errorf("getpid: file value + bias = %#x, program says %#x", want, getpid)
	}
	for _, name := range []string{"getpid", "libc!getpid", "__getpid"} {
		if a, err := s.Addr(name); err != nil || a != getpid {
			t.Errorf("Addr(%s) = %#x, %v; want %#x", name, a, err, getpid)
		}
	}
	if got := s.Lookup(getpid + 1).String(); got != "getpid+0x1" {
		t.Errorf("Lookup(getpid+1) = %q, want getpid+0x1", got)
	}

	// The same file added at a chosen bias, as a kernel image would be.
	k := tracer.NewSymbolizer(nil, nil)
	const kbias = 0xffff_8000_0000_0000
	if err := k.AddFile(bin, kbias, kbias+1<<20, kbias); err != nil {
		t.Fatal(err)
	}
	kw := elfTestSymValue(t, bin, "work") + kbias
	if got := k.LookupLine(kw + 1); got.String() != "work+0x1" || got.Line != 4 || got.Image != bin {
		t.Errorf("AddFile: Lookup(%#x) = %q at %q in %q, want work+0x1 at prog.c:4", kw+1, got, got.FileLine(), got.Image)
	}
	if err := k.AddFile(filepath.Join(t.TempDir(), "missing"), 0, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AddFile(missing) = %v, want a not-exist error", err)
	}

	// Disassemble work from the process's memory, starting at its symbol.
	sym, err := s.LookupName("work")
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/" + pid + "/mem")
	if err != nil {
		t.Skipf("cannot read the program's memory: %v", err)
	}
	defer mem.Close()
	code := make([]byte, sym.Size)
	if _, err := mem.ReadAt(code, int64(sym.Start)); err != nil {
		t.Skipf("cannot read the program's memory: %v", err)
	}
	arch, _ := tracer.ParseArch(runtime.GOARCH)
	insts := tracer.Disassemble(arch, code, sym.Start, s.SymName)
	if len(insts) < 4 {
		t.Fatalf("work disassembles to %d instructions", len(insts))
	}
	var text []string
	for _, in := range insts {
		text = append(text, in.String())
		if in.Text == "(bad)" {
			t.Errorf("bad instruction in work: %v", in)
		}
	}
	if last := insts[len(insts)-1].Text; last != "ret" {
		t.Errorf("work ends with %q, want ret:\n%s", last, strings.Join(text, "\n"))
	}
	if start := tracer.DisasmStart(arch, code, sym.Start, insts[len(insts)-1].Addr, 2); start != insts[len(insts)-3].Addr {
		t.Errorf("DisasmStart 2 before ret = %#x, want %#x", start, insts[len(insts)-3].Addr)
	}
	t.Log(fmt.Sprintf("work:\n%s", strings.Join(text, "\n")))

	// Every instruction's line agrees with addr2line's, where binutils is
	// installed.
	if a2l, err := exec.LookPath("addr2line"); err == nil {
		args := []string{"-f", "-e", bin}
		for _, in := range insts {
			args = append(args, fmt.Sprintf("%#x", s.Lookup(in.Addr).ImageAddr))
		}
		out, err := exec.Command(a2l, args...).Output()
		if err != nil {
			t.Fatalf("addr2line: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2*len(insts) {
			t.Fatalf("addr2line printed %d lines for %d addresses", len(lines), len(insts))
		}
		for i, in := range insts {
			fn, pos := lines[2*i], strings.Fields(lines[2*i+1])[0]
			got := s.LookupLine(in.Addr)
			if want := fmt.Sprintf("%s %s", fn, filepath.Base(pos)); got.Func+" "+filepath.Base(got.FileLine()) != want {
				t.Errorf("%#x: %s %s, addr2line says %s", in.Addr, got.Func, got.FileLine(), want)
			}
		}
	}

	// Around a PC inside work, from the process: decoding starts at work
	// (from the symbolizer), so the listing is the same as above. Without a
	// symbolizer it syncs from 64 bytes back and still lands on the PC.
	read := func(addr uint64, p []byte) (int, error) { return mem.ReadAt(p, int64(addr)) }
	at := len(insts) - 4
	pc := insts[at].Addr
	for _, sym := range []*tracer.Symbolizer{s, nil} {
		around, err := tracer.DisassembleAround(arch, read, sym, pc, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := insts[at-3 : at+3]
		if sym == nil {
			want = insts[at : at+3] // what precedes pc may legitimately differ
			for len(around) > 0 && around[0].Addr < pc {
				around = around[1:]
			}
		}
		if len(around) != len(want) {
			t.Fatalf("DisassembleAround(symbolizer %v) = %d instructions, want %d", sym != nil, len(around), len(want))
		}
		for i := range want {
			if around[i].Addr != want[i].Addr || (sym != nil && around[i].Text != want[i].Text) {
				t.Errorf("DisassembleAround(symbolizer %v)[%d] = %v, want %v", sym != nil, i, around[i], want[i])
			}
		}
	}
}

// TestSymbolizeDebugFile strips the gcc program and finds its symbols and
// lines in a separate debug file, by build id and by .gnu_debuglink.
func TestSymbolizeDebugFile(t *testing.T) {
	pid, bin, addrs := elfTestRun(t)
	work := addrs.work
	objcopy, err1 := exec.LookPath("objcopy")
	strip, err2 := exec.LookPath("strip")
	if err1 != nil || err2 != nil {
		t.Skip("binutils (objcopy, strip) not installed")
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	// stripped copies bin to dir/prog, keeps its debug information in
	// debugPath and strips it of .symtab and DWARF.
	stripped := func(dir, debugPath string) string {
		t.Helper()
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "prog")
		if err := os.WriteFile(out, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if debugPath != "" {
			if err := os.MkdirAll(filepath.Dir(debugPath), 0o755); err != nil {
				t.Fatal(err)
			}
			run(objcopy, "--only-keep-debug", bin, debugPath)
		}
		run(strip, "--strip-all", out)
		return out
	}
	// images lists the running program's mappings as if they came from file.
	images := func(file string) []tracer.Image {
		var out []tracer.Image
		for _, im := range symTestMaps(t, pid) {
			if im.Path == bin {
				im.Path = file
			}
			out = append(out, im)
		}
		return out
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	note := ef.Section(".note.gnu.build-id")
	if note == nil {
		t.Skip("gcc wrote no build id")
	}
	data, err := note.Data()
	if err != nil || len(data) < 16+2 {
		t.Fatalf("build id note: %v", err)
	}
	id := fmt.Sprintf("%x", data[16:]) // 12-byte header, then "GNU\x00"

	buildIDDir := t.TempDir()
	linkDir := t.TempDir()
	tests := []struct {
		name      string
		file      string
		debugDirs []string
		want      bool
	}{
		{"no-debug-file", stripped(t.TempDir(), ""), []string{t.TempDir()}, false},
		{"build-id", stripped(t.TempDir(), filepath.Join(buildIDDir, ".build-id", id[:2], id[2:]+".debug")), []string{buildIDDir}, true},
		{"debuglink", func() string {
			out := stripped(linkDir, filepath.Join(linkDir, "prog.dbg"))
			run(objcopy, "--add-gnu-debuglink="+filepath.Join(linkDir, "prog.dbg"), out)
			return out
		}(), []string{t.TempDir()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tracer.NewSymbolizer(images(tt.file), &tracer.SymbolizerOptions{DebugDirs: tt.debugDirs})
			loc := s.LookupLine(work + 1)
			if !tt.want {
				if loc.Known() || loc.File != "" || !strings.HasPrefix(loc.String(), "prog+0x") {
					t.Errorf("Lookup(work+1) = %q at %q, want prog+0x... and no line", loc, loc.FileLine())
				}
				return
			}
			if loc.String() != "work+0x1" || filepath.Base(loc.File) != "prog.c" || loc.Line != 4 || loc.Image != tt.file {
				t.Errorf("Lookup(work+1) = %q at %q in %q, want work+0x1 at prog.c:4 (load errors: %v)", loc, loc.FileLine(), loc.Image, s.LoadErrors())
			}
		})
	}
}

// elfInlineProg has sq inlined into outer (line 11) at -O2.
const elfInlineProg = `#include <stdio.h>
volatile int g = 3;

static inline __attribute__((always_inline)) int sq(int x) {
	return x * x + g;
}

__attribute__((noinline)) int outer(int n) {
	int s = 0;
	for (int i = 0; i < n; i++)
		s += sq(i);
	return s;
}

int main(int argc, char **argv) {
	printf("%d\n", outer(argc + 5));
	return 0;
}
`

// TestSymbolizeInline checks LookupInline's chains on every instruction of
// a function with inlined code against addr2line -i.
func TestSymbolizeInline(t *testing.T) {
	gcc, err1 := exec.LookPath("gcc")
	a2l, err2 := exec.LookPath("addr2line")
	if err1 != nil || err2 != nil {
		t.Skip("needs gcc and addr2line")
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "inl.c"), filepath.Join(dir, "inl")
	if err := os.WriteFile(src, []byte(elfInlineProg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-g", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc failed: %v\n%s", err, out)
	}
	// The file itself, unrelocated: runtime address = link-time address.
	s := tracer.NewSymbolizer(nil, nil)
	if err := s.AddFile(bin, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	sym, err := s.LookupName("outer")
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	text := ef.Section(".text")
	data, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := tracer.ParseArch(runtime.GOARCH)
	insts := tracer.Disassemble(arch, data[sym.Start-text.Addr:sym.Start-text.Addr+sym.Size], sym.Start, nil)

	args := []string{"-i", "-f", "-e", bin}
	for _, in := range insts {
		args = append(args, fmt.Sprintf("%#x", in.Addr))
	}
	out, err := exec.Command(a2l, args...).Output()
	if err != nil {
		t.Fatalf("addr2line: %v", err)
	}
	// addr2line -i prints func/file:line pairs, innermost first, with no
	// separator between addresses: a chain ends at the holding function.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	inlinedSeen := false
	for _, in := range insts {
		frames := s.LookupInline(in.Addr)
		var got, want []string
		for _, f := range frames {
			got = append(got, fmt.Sprintf("%s %s:%d", f.Func, filepath.Base(f.File), f.Line))
		}
		for range frames {
			if len(lines) < 2 {
				break
			}
			pos := strings.Fields(lines[1])[0]
			want = append(want, lines[0]+" "+filepath.Base(pos))
			lines = lines[2:]
		}
		if strings.Join(got, " <- ") != strings.Join(want, " <- ") {
			t.Errorf("%#x: LookupInline = %s; addr2line -i = %s", in.Addr, strings.Join(got, " <- "), strings.Join(want, " <- "))
		}
		if len(frames) == 2 && frames[0].Func == "sq" && frames[0].Inlined && frames[0].Line == 5 &&
			frames[1].Func == "outer" && !frames[1].Inlined && frames[1].Line == 11 && frames[1].FuncAddr == sym.Start {
			inlinedSeen = true
		}
		if last := frames[len(frames)-1]; last.Func != "outer" || last.Inlined || last.Offset != in.Addr-sym.Start {
			t.Errorf("%#x: outermost frame %+v, want outer+%#x", in.Addr, last, in.Addr-sym.Start)
		}
	}
	if len(lines) != 0 {
		t.Errorf("addr2line printed %d more lines than LookupInline has frames: %q", len(lines), lines)
	}
	if !inlinedSeen {
		t.Error("no instruction of outer shows sq (inl.c:5) inlined at inl.c:11")
	}
}
