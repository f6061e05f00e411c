package tracer_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/tracer"
)

// A slice of a real 6.1 cloud-amd64 /proc/kallsyms (nokaslr), with the
// per-CPU and absolute entries that must be skipped.
const kallsymsSample = `0000000000000000 A fixed_percpu_data
0000000000001000 A cpu_debug_store
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81000070 T secondary_startup_64
ffffffff81c00990 T asm_exc_divide_error
ffffffff81c009b0 T asm_exc_overflow
ffffffff81a17a00 t native_safe_halt
ffffffff8211ffe0 D linux_banner
ffffffff82a079c0 D jiffies_64
ffffffff83000000 B _end
ffffffffc0000000 t some_mod_fn	[some_mod]
`

func TestParseKallsyms(t *testing.T) {
	ks, err := tracer.ParseKallsyms(strings.NewReader(kallsymsSample))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Text != 0xffffffff81000000 || ks.End != 0xffffffff83000000 || ks.Skipped != 3 {
		t.Errorf("text %#x end %#x skipped %d", ks.Text, ks.End, ks.Skipped)
	}
	if a, ok := ks.Addr("linux_banner"); !ok || a != 0xffffffff8211ffe0 {
		t.Errorf("linux_banner = %#x, %v", a, ok)
	}
	s, ok := ks.Table.Lookup(0xffffffff81a17a0b)
	if !ok || s.Name != "native_safe_halt" {
		t.Errorf("lookup native_safe_halt+0xb = %+v, %v", s, ok)
	}
	sym := tracer.NewSymbolizer(nil, nil)
	const slide = 0xa200000
	ks.AddTo(sym, slide, "[kernel.kallsyms]")
	if loc := sym.Lookup(0xffffffff81a17a0b + slide); loc.Func != "native_safe_halt" {
		t.Errorf("symbolizer with slide: %+v", loc)
	}
}

func TestParseKallsymsErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		text     string
	}{
		{"debian placeholder", "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n", tracer.ErrStubSystemMap, ""},
		{"unprivileged", "0000000000000000 T _text\n0000000000000000 T startup_64\n", nil, "without privilege"},
		{"garbage", "hello\n", nil, "want ADDRESS TYPE NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tracer.ParseKallsyms(strings.NewReader(tt.in))
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// fakeKernel is guest memory with a banner and an IDT gate at a slide.
type fakeKernel map[uint64][]byte

func (m fakeKernel) read(addr uint64, p []byte) (int, error) {
	for base, b := range m {
		if addr >= base && addr+uint64(len(p)) <= base+uint64(len(b)) {
			return copy(p, b[addr-base:]), nil
		}
	}
	return 0, tracer.ErrUnmapped
}

func gate(handler uint64) []byte {
	g := make([]byte, 16)
	binary.LittleEndian.PutUint16(g[0:], uint16(handler))
	binary.LittleEndian.PutUint16(g[2:], 0x10)
	g[5] = 0x8e
	binary.LittleEndian.PutUint16(g[6:], uint16(handler>>16))
	binary.LittleEndian.PutUint32(g[8:], uint32(handler>>32))
	return g
}

func TestFindKernelSlide(t *testing.T) {
	ks, err := tracer.ParseKallsyms(strings.NewReader(kallsymsSample))
	if err != nil {
		t.Fatal(err)
	}
	banner := []byte("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)")
	const slide = 0xa200000
	tests := []struct {
		name   string
		mem    fakeKernel
		want   uint64
		method string
	}{
		{"nokaslr", fakeKernel{0xffffffff8211ffe0: banner}, 0, "file address"},
		{"idt", fakeKernel{0xffffffff8211ffe0 + slide: banner, 0xfffffe0000000000: gate(0xffffffff81c00990 + slide)}, slide, "IDT"},
		{"scan (no IDT)", fakeKernel{0xffffffff8211ffe0 + 0xe400000: banner}, 0xe400000, "scan"},
		{"scan (IDT disagrees)", fakeKernel{0xffffffff8211ffe0 + 0x400000: banner, 0xfffffe0000000000: gate(0xffffffff81c00990 + 0x800000)}, 0x400000, "scan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tracer.FindKernelSlide(tt.mem.read, ks, tracer.SlideOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Slide != tt.want || !strings.Contains(got.Method, tt.method) {
				t.Fatalf("slide %#x by %q, want %#x by %s", got.Slide, got.Method, tt.want, tt.method)
			}
		})
	}
	if _, err := tracer.FindKernelSlide(fakeKernel{}.read, ks, tracer.SlideOptions{MaxSlide: 64 << 20}); err == nil {
		t.Error("no banner anywhere: want an error")
	}
}
