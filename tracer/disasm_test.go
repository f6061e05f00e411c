package tracer_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/tracer"
)

// disTestSyms names 0x2000 "target" and nothing else.
func disTestSyms(a uint64) (string, bool) {
	if a == 0x2000 {
		return "target", true
	}
	if a > 0x2000 && a < 0x2100 {
		return fmt.Sprintf("target+%#x", a-0x2000), true
	}
	return "", false
}

func TestDisassemble(t *testing.T) {
	tests := []struct {
		name string
		arch tracer.Arch
		addr uint64
		hex  string
		want []string // one "len|text" per instruction
	}{
		{"amd64/prologue", tracer.ArchAMD64, 0x1000, "55 48 89 e5 c3", []string{"1|push rbp", "3|mov rbp, rsp", "1|ret"}},
		// call rel32 to 0x2000 (0x1005 + 0xffb).
		{"amd64/call", tracer.ArchAMD64, 0x1000, "e8 fb 0f 00 00", []string{"5|call 0x2000 <target>"}},
		{"amd64/jmp-unknown", tracer.ArchAMD64, 0x1000, "eb fe", []string{"2|jmp 0x1000"}},
		// lea rax, [rip+0xff9] -> 0x1007+0xff9 = 0x2000.
		{"amd64/rip-relative", tracer.ArchAMD64, 0x1000, "48 8d 05 f9 0f 00 00", []string{"7|lea rax, ptr [rip+0xff9]\t# 0x2000 <target>"}},
		// 0x06 (push es) does not exist in 64-bit mode; decoding resumes after it.
		{"amd64/bad-then-good", tracer.ArchAMD64, 0x1000, "06 c3", []string{"1|(bad)", "1|ret"}},
		{"amd64/truncated", tracer.ArchAMD64, 0x1000, "90 48 89", []string{"1|nop", "1|(bad)", "1|(bad)"}},
		{"arm64/prologue", tracer.ArchARM64, 0x1000, "fd 7b bf a9 fd 03 00 91 c0 03 5f d6", []string{"4|stp x29, x30, [sp,#-16]!", "4|mov x29, sp", "4|ret"}},
		// bl +0x1000 -> 0x2000.
		{"arm64/bl", tracer.ArchARM64, 0x1000, "00 04 00 94", []string{"4|bl 0x2000 <target>"}},
		// b.eq +8 -> 0x2008.
		{"arm64/bcond", tracer.ArchARM64, 0x2000, "40 00 00 54", []string{"4|b.eq 0x2008 <target+0x8>"}},
		// adrp x0, page +0x1000 from 0x1234 -> 0x2000, shown without a symbol.
		{"arm64/adrp", tracer.ArchARM64, 0x1234, "00 00 00 b0", []string{"4|adrp x0, 0x2000"}},
		{"arm64/bad-then-good", tracer.ArchARM64, 0x1000, "ff ff ff ff c0 03 5f d6 01 02", []string{"4|(bad)", "4|ret", "2|(bad)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			insts := tracer.Disassemble(tt.arch, code, tt.addr, disTestSyms)
			var got []string
			addr := tt.addr
			for _, in := range insts {
				got = append(got, fmt.Sprintf("%d|%s", in.Len, in.Text))
				if in.Addr != addr || len(in.Bytes) != in.Len {
					t.Errorf("%s: addr %#x, %d bytes; want addr %#x, %d bytes", in.Text, in.Addr, len(in.Bytes), addr, in.Len)
				}
				addr += uint64(in.Len)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	if got := tracer.Disassemble(tracer.ArchUnknown, []byte{0x90}, 0, nil); got != nil {
		t.Errorf("unknown arch: %v, want nil", got)
	}
}

func TestDisasmStart(t *testing.T) {
	// push rbp; mov rbp, rsp; sub rsp, 0x10; mov eax, 1; ret
	code, _ := hex.DecodeString("554889e54883ec10b801000000c3")
	const base = 0x1000
	tests := []struct {
		name string
		off  int // where the buffer starts, relative to base
		pc   uint64
		n    int
		want uint64
	}{
		{"from-function-start", 0, 0x100d, 2, 0x1004},    // 2 before ret: sub, mov eax
		{"all-available", 0, 0x100d, 10, 0x1000},         // fewer than n exist
		{"mid-instruction-buffer", 2, 0x100d, 2, 0x1004}, // buffer starts inside mov rbp, rsp
		{"pc-outside", 0, 0x3000, 2, 0x3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tracer.DisasmStart(tracer.ArchAMD64, code[tt.off:], base+uint64(tt.off), tt.pc, tt.n)
			if got != tt.want {
				t.Errorf("DisasmStart = %#x, want %#x", got, tt.want)
			}
		})
	}
	if got := tracer.DisasmStart(tracer.ArchARM64, make([]byte, 64), 0x1000, 0x1020, 3); got != 0x1014 {
		t.Errorf("arm64 DisasmStart = %#x, want 0x1014", got)
	}
	if got := tracer.DisasmStart(tracer.ArchARM64, make([]byte, 64), 0x1000, 0x1008, 5); got != 0x1000 {
		t.Errorf("arm64 DisasmStart near start = %#x, want 0x1000", got)
	}
}

func TestDisassembleAround(t *testing.T) {
	// push rbp; mov rbp, rsp; sub rsp, 0x10; mov eax, 1; ret; then int3 padding.
	code, _ := hex.DecodeString("554889e54883ec10b801000000c3" + strings.Repeat("cc", 50))
	const base = 0x1000
	// read serves code at base and fails below it, like an unmapped page.
	read := func(addr uint64, p []byte) (int, error) {
		if addr < base || addr >= base+uint64(len(code)) {
			return 0, tracer.ErrUnmapped
		}
		return copy(p, code[addr-base:]), nil
	}
	texts := func(insts []tracer.Instruction) string {
		var out []string
		for _, in := range insts {
			out = append(out, fmt.Sprintf("%#x %s", in.Addr, in.Text))
		}
		return strings.Join(out, "; ")
	}
	tests := []struct {
		name          string
		arch          tracer.Arch
		pc            uint64
		before, after int
		want          string
	}{
		{"amd64/page-start", tracer.ArchAMD64, 0x1008, 2, 1, "0x1001 mov rbp, rsp; 0x1004 sub rsp, 0x10; 0x1008 mov eax, 0x1; 0x100d ret"},
		{"amd64/at-start", tracer.ArchAMD64, 0x1000, 3, 0, "0x1000 push rbp"},
		{"amd64/after-only", tracer.ArchAMD64, 0x100d, 0, 2, "0x100d ret; 0x100e int3; 0x100f int3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insts, err := tracer.DisassembleAround(tt.arch, read, nil, tt.pc, tt.before, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(insts); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := tracer.DisassembleAround(tracer.ArchAMD64, read, nil, 0x9000, 2, 2); !errors.Is(err, tracer.ErrUnmapped) {
		t.Errorf("unmapped pc: error %v, want ErrUnmapped", err)
	}
	if _, err := tracer.DisassembleAround(tracer.ArchUnknown, read, nil, 0x1000, 2, 2); err == nil {
		t.Error("unknown arch: no error")
	}
}

func ExampleDisassemble() {
	code := []byte{0x55, 0x48, 0x89, 0xe5, 0xe8, 0xf7, 0x0f, 0x00, 0x00, 0xc3}
	names := func(addr uint64) (string, bool) { return "helper", addr == 0x2000 }
	for _, in := range tracer.Disassemble(tracer.ArchAMD64, code, 0x1000, names) {
		fmt.Printf("%#x  %-16x %s\n", in.Addr, in.Bytes, in.Text)
	}
	// Output:
	// 0x1000  55               push rbp
	// 0x1001  4889e5           mov rbp, rsp
	// 0x1004  e8f70f0000       call 0x2000 <helper>
	// 0x1009  c3               ret
}

// FuzzDisassemble checks that any bytes decode into instructions that cover
// the input exactly, in order, without panicking.
func FuzzDisassemble(f *testing.F) {
	f.Add([]byte{0x55, 0x48, 0x89, 0xe5, 0xc3}, uint64(0x1000), true)
	f.Add([]byte{0xfd, 0x7b, 0xbf, 0xa9, 0xc0, 0x03, 0x5f, 0xd6}, uint64(0x1000), false)
	f.Add([]byte{0x0f, 0x0f, 0xff}, uint64(0), true)
	f.Fuzz(func(t *testing.T, code []byte, addr uint64, amd64 bool) {
		arch := tracer.ArchARM64
		if amd64 {
			arch = tracer.ArchAMD64
		}
		next := addr
		total := 0
		for _, in := range tracer.Disassemble(arch, code, addr, disTestSyms) {
			if in.Addr != next || in.Len <= 0 || len(in.Bytes) != in.Len || in.Text == "" {
				t.Fatalf("bad instruction %+v (expected at %#x)", in, next)
			}
			next += uint64(in.Len)
			total += in.Len
		}
		if total != len(code) {
			t.Fatalf("instructions cover %d bytes of %d", total, len(code))
		}
		if len(code) > 0 {
			pc := addr + uint64(len(code)-1)
			if s := tracer.DisasmStart(arch, code, addr, pc, 4); s > pc || s < addr {
				t.Fatalf("DisasmStart = %#x outside [%#x, %#x]", s, addr, pc)
			}
		}
	})
}

func TestDisassembleAroundARM64(t *testing.T) {
	// stp x29, x30, [sp,#-16]!; mov x29, sp; bl 0x2000 (from 0x1008); ret
	code, _ := hex.DecodeString("fd7bbfa9fd030091fe030094c0035fd6")
	const base = 0x1000
	read := func(addr uint64, p []byte) (int, error) {
		if addr < base || addr >= base+uint64(len(code)) {
			return 0, tracer.ErrUnmapped
		}
		return copy(p, code[addr-base:]), nil
	}
	insts, err := tracer.DisassembleAround(tracer.ArchARM64, read, nil, 0x1008, 5, -3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range insts {
		got = append(got, fmt.Sprintf("%#x %s", in.Addr, in.Text))
	}
	want := "0x1000 stp x29, x30, [sp,#-16]!; 0x1004 mov x29, sp; 0x1008 bl 0x2000"
	if strings.Join(got, "; ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, "; "), want)
	}
}
