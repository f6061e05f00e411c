package mach

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
)

// The expected numbers below are the header values recorded in
// docs/mach-api.md sections 4.2-4.3 and 6 (compiled with zig's macOS 12
// headers for x86_64-macos and aarch64-macos).

func TestStateSizesMatchCount(t *testing.T) {
	tests := []struct {
		name   string
		s      State
		size   uintptr
		count  uint32
		flavor StateFlavor
	}{
		{"x86_THREAD_STATE64", new(X86ThreadState64), unsafe.Sizeof(X86ThreadState64{}), 42, 4},
		{"x86_FLOAT_STATE64", new(X86FloatState64), unsafe.Sizeof(X86FloatState64{}), 131, 5},
		{"x86_EXCEPTION_STATE64", new(X86ExceptionState64), unsafe.Sizeof(X86ExceptionState64{}), 4, 6},
		{"x86_DEBUG_STATE64", new(X86DebugState64), unsafe.Sizeof(X86DebugState64{}), 16, 11},
		{"x86_AVX_STATE64", new(X86AVXState64), unsafe.Sizeof(X86AVXState64{}), 211, 17},
		{"x86_AVX512_STATE64", new(X86AVX512State64), unsafe.Sizeof(X86AVX512State64{}), 611, 20},
		{"ARM_THREAD_STATE64", new(ARMThreadState64), unsafe.Sizeof(ARMThreadState64{}), 68, 6},
		{"ARM_EXCEPTION_STATE64", new(ARMExceptionState64), unsafe.Sizeof(ARMExceptionState64{}), 4, 7},
		{"ARM_DEBUG_STATE64", new(ARMDebugState64), unsafe.Sizeof(ARMDebugState64{}), 130, 15},
		{"ARM_NEON_STATE64", new(ARMNeonState64), unsafe.Sizeof(ARMNeonState64{}), 132, 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.s.Count() != tt.count {
				t.Errorf("Count() = %d, want %d", tt.s.Count(), tt.count)
			}
			if tt.s.Flavor() != tt.flavor {
				t.Errorf("Flavor() = %d, want %d", tt.s.Flavor(), tt.flavor)
			}
			if want := uintptr(tt.count) * 4; tt.size != want {
				t.Errorf("unsafe.Sizeof = %d, want COUNT*4 = %d", tt.size, want)
			}
			if got := binary.Size(tt.s); got != int(tt.count)*4 {
				t.Errorf("binary.Size = %d, want %d", got, tt.count*4)
			}
			checkFields(t, tt.s)
			checkRoundTrip(t, tt.s)
		})
	}
}

// checkFields verifies that the register table is ordered, in bounds and
// without overlaps.
func checkFields(t *testing.T, s State) {
	t.Helper()
	size := int(s.Count()) * 4
	end := 0
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		if f.Offset < end {
			t.Errorf("field %s at %d overlaps the previous one (ends at %d)", f.Name, f.Offset, end)
		}
		if f.Size <= 0 || f.Offset+f.Size > size {
			t.Errorf("field %s [%d,+%d) outside the %d-byte struct", f.Name, f.Offset, f.Size, size)
		}
		if seen[f.Name] {
			t.Errorf("duplicate field %s", f.Name)
		}
		seen[f.Name] = true
		end = f.Offset + f.Size
	}
}

// checkRoundTrip fills the struct with a byte pattern through
// UnmarshalBinary and expects MarshalBinary to give it back, except for the
// reserved bytes the structs mark as blank.
func checkRoundTrip(t *testing.T, s State) {
	t.Helper()
	n := int(s.Count()) * 4
	in := make([]byte, n)
	for i := range in {
		in[i] = byte(i*7 + 1)
	}
	if err := s.UnmarshalBinary(in); err != nil {
		t.Fatal(err)
	}
	// The in-memory layout must be the little-endian wire layout: this is what
	// lets the cgo layer pass the struct to thread_get_state directly.
	mem := unsafe.Slice((*byte)(stateAddr(s)), n)
	out, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem, out) {
		t.Errorf("memory image differs from MarshalBinary output")
	}
	for _, f := range s.Fields() {
		if !bytes.Equal(in[f.Offset:f.Offset+f.Size], out[f.Offset:f.Offset+f.Size]) {
			t.Errorf("field %s did not round-trip", f.Name)
		}
	}
	if err := s.UnmarshalBinary(in[:n-1]); !errors.Is(err, ErrStateSize) {
		t.Errorf("short input: err = %v, want ErrStateSize", err)
	}
}

func stateAddr(s State) unsafe.Pointer { return s.ptr() }

func fieldOffset(t *testing.T, s State, name string) (int, int) {
	t.Helper()
	for _, f := range s.Fields() {
		if f.Name == name {
			return f.Offset, f.Size
		}
	}
	t.Fatalf("no field %s", name)
	return 0, 0
}

func TestStateFieldOffsets(t *testing.T) {
	type off struct {
		name       string
		got, want  uintptr
		table      State
		tableField string
	}
	var (
		xt  X86ThreadState64
		xf  X86FloatState64
		xa  X86AVXState64
		x5  X86AVX512State64
		xe  X86ExceptionState64
		xd  X86DebugState64
		at  ARMThreadState64
		an  ARMNeonState64
		ad  ARMDebugState64
		ae  ARMExceptionState64
		nop = ""
	)
	tests := []off{
		{"x86 rbp", unsafe.Offsetof(xt.Rbp), 48, &xt, "rbp"},
		{"x86 rsp", unsafe.Offsetof(xt.Rsp), 56, &xt, "rsp"},
		{"x86 r8", unsafe.Offsetof(xt.R8), 64, &xt, "r8"},
		{"x86 rip", unsafe.Offsetof(xt.Rip), 128, &xt, "rip"},
		{"x86 rflags", unsafe.Offsetof(xt.Rflags), 136, &xt, "rflags"},
		{"x86 cs", unsafe.Offsetof(xt.Cs), 144, &xt, "cs"},
		{"x86 fs", unsafe.Offsetof(xt.Fs), 152, &xt, "fs"},
		{"x86 gs", unsafe.Offsetof(xt.Gs), 160, &xt, "gs"},
		{"float fcw", unsafe.Offsetof(xf.Fcw), 8, &xf, "fcw"},
		{"float fsw", unsafe.Offsetof(xf.Fsw), 10, &xf, "fsw"},
		{"float ftw", unsafe.Offsetof(xf.Ftw), 12, &xf, "ftw"},
		{"float fop", unsafe.Offsetof(xf.Fop), 14, &xf, "fop"},
		{"float ip", unsafe.Offsetof(xf.IP), 16, &xf, "fip"},
		{"float cs", unsafe.Offsetof(xf.CS), 20, &xf, "fcs"},
		{"float dp", unsafe.Offsetof(xf.DP), 24, &xf, "fdp"},
		{"float ds", unsafe.Offsetof(xf.DS), 28, &xf, "fds"},
		{"float mxcsr", unsafe.Offsetof(xf.Mxcsr), 32, &xf, "mxcsr"},
		{"float mxcsrmask", unsafe.Offsetof(xf.MxcsrMask), 36, &xf, "mxcsr_mask"},
		{"float stmm0", unsafe.Offsetof(xf.Stmm), 40, &xf, "st0"},
		{"float xmm0", unsafe.Offsetof(xf.Xmm), 168, &xf, "xmm0"},
		{"float reserved1", unsafe.Offsetof(xf.Reserved1), 520, nil, nop},
		{"avx reserved1", unsafe.Offsetof(xa.AVXReserved1), 524, nil, nop},
		{"avx ymmh0", unsafe.Offsetof(xa.Ymmh), 588, &xa, "ymmh0"},
		{"avx512 k0", unsafe.Offsetof(x5.K), 844, &x5, "k0"},
		{"avx512 zmmh0", unsafe.Offsetof(x5.Zmmh), 908, &x5, "zmmh0"},
		{"avx512 zmm16", unsafe.Offsetof(x5.Zmm), 1420, &x5, "zmm16"},
		{"exc cpu", unsafe.Offsetof(xe.CPU), 2, &xe, "cpu"},
		{"exc err", unsafe.Offsetof(xe.Err), 4, &xe, "err"},
		{"exc faultvaddr", unsafe.Offsetof(xe.Faultvaddr), 8, &xe, "faultvaddr"},
		{"debug dr7", unsafe.Offsetof(xd.Dr) + 7*8, 56, &xd, "dr7"},
		{"arm fp", unsafe.Offsetof(at.Fp), 232, &at, "fp"},
		{"arm lr", unsafe.Offsetof(at.Lr), 240, &at, "lr"},
		{"arm sp", unsafe.Offsetof(at.Sp), 248, &at, "sp"},
		{"arm pc", unsafe.Offsetof(at.Pc), 256, &at, "pc"},
		{"arm cpsr", unsafe.Offsetof(at.Cpsr), 264, &at, "cpsr"},
		{"arm pad", unsafe.Offsetof(at.Flags), 268, nil, nop},
		{"neon v31", unsafe.Offsetof(an.V) + 31*16, 496, &an, "v31"},
		{"neon fpsr", unsafe.Offsetof(an.Fpsr), 512, &an, "fpsr"},
		{"neon fpcr", unsafe.Offsetof(an.Fpcr), 516, &an, "fpcr"},
		{"debug bcr", unsafe.Offsetof(ad.Bcr), 128, &ad, "bcr0"},
		{"debug wvr", unsafe.Offsetof(ad.Wvr), 256, &ad, "wvr0"},
		{"debug wcr", unsafe.Offsetof(ad.Wcr), 384, &ad, "wcr0"},
		{"debug mdscr", unsafe.Offsetof(ad.MdscrEL1), 512, &ad, "mdscr_el1"},
		{"arm exc esr", unsafe.Offsetof(ae.Esr), 8, &ae, "esr"},
		{"arm exc exception", unsafe.Offsetof(ae.Exception), 12, &ae, "exception"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: struct offset %d, want %d", tt.name, tt.got, tt.want)
		}
		if tt.table != nil {
			if o, _ := fieldOffset(t, tt.table, tt.tableField); uintptr(o) != tt.want {
				t.Errorf("%s: Fields() offset %d, want %d", tt.name, o, tt.want)
			}
		}
	}
	if _, sz := fieldOffset(t, &xf, "st7"); sz != 10 {
		t.Errorf("st7 size %d, want 10", sz)
	}
	if o, _ := fieldOffset(t, &xf, "st7"); o != 40+7*16 {
		t.Errorf("st7 offset %d, want %d", o, 40+7*16)
	}
}

func TestThreadInfoLayouts(t *testing.T) {
	var b ThreadBasicInfo
	var id ThreadIdentifierInfo
	var ex ThreadExtendedInfo
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"basic size", unsafe.Sizeof(b), THREAD_BASIC_INFO_COUNT * 4},
		{"basic size doc", unsafe.Sizeof(b), 40},
		{"basic cpu_usage", unsafe.Offsetof(b.CPUUsage), 16},
		{"basic run_state", unsafe.Offsetof(b.RunState), 24},
		{"basic suspend_count", unsafe.Offsetof(b.SuspendCount), 32},
		{"basic sleep_time", unsafe.Offsetof(b.SleepTime), 36},
		{"identifier size", unsafe.Sizeof(id), THREAD_IDENTIFIER_INFO_COUNT * 4},
		{"identifier handle", unsafe.Offsetof(id.ThreadHandle), 8},
		{"identifier dispatch", unsafe.Offsetof(id.DispatchQaddr), 16},
		{"extended size", unsafe.Sizeof(ex), THREAD_EXTENDED_INFO_COUNT * 4},
		{"extended size doc", unsafe.Sizeof(ex), 112},
		{"extended cpu_usage", unsafe.Offsetof(ex.CPUUsage), 16},
		{"extended sleep_time", unsafe.Offsetof(ex.SleepTime), 32},
		{"extended curpri", unsafe.Offsetof(ex.CurPri), 36},
		{"extended maxpriority", unsafe.Offsetof(ex.MaxPriority), 44},
		{"extended name", unsafe.Offsetof(ex.RawName), 48},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	copy(ex.RawName[:], "worker\x00junk")
	if ex.Name() != "worker" {
		t.Errorf("Name() = %q", ex.Name())
	}
}

func TestFlavorConstants(t *testing.T) {
	// The numbers that differ between the architectures, and the ones that
	// trip people up (mach-api.md section 0).
	if X86_THREAD_STATE_NONE != 13 || ARM_THREAD_STATE_NONE != 5 {
		t.Error("THREAD_STATE_NONE must be 13 on x86_64 and 5 on arm64")
	}
	if X86_EXCEPTION_STATE64 != ARM_THREAD_STATE64 {
		t.Error("flavor 6 is both x86_EXCEPTION_STATE64 and ARM_THREAD_STATE64")
	}
	if TASK_DYLD_INFO != 17 || TASK_DYLD_INFO_COUNT != 5 || VM_REGION_BASIC_INFO_64 != 9 {
		t.Error("task/region info constants")
	}
	for _, c := range []struct {
		arch string
		f    StateFlavor
	}{{"amd64", X86_THREAD_STATE64}, {"amd64", X86_FLOAT_STATE64}, {"amd64", X86_AVX_STATE64}, {"amd64", X86_AVX512_STATE64},
		{"amd64", X86_DEBUG_STATE64}, {"amd64", X86_EXCEPTION_STATE64}, {"arm64", ARM_THREAD_STATE64},
		{"arm64", ARM_NEON_STATE64}, {"arm64", ARM_DEBUG_STATE64}, {"arm64", ARM_EXCEPTION_STATE64}} {
		s, err := NewState(c.arch, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if s.Flavor() != c.f {
			t.Errorf("NewState(%s, %d).Flavor() = %d", c.arch, c.f, s.Flavor())
		}
	}
	if _, err := NewState("arm64", X86_DEBUG_STATE64); !errors.Is(err, ErrUnsupportedState) {
		t.Errorf("NewState(arm64, 11): err = %v", err)
	}
}

func TestMarshalLittleEndian(t *testing.T) {
	s := &ARMThreadState64{Pc: 0x0102030405060708, Cpsr: 0x60000000}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{8, 7, 6, 5, 4, 3, 2, 1}; !bytes.Equal(b[256:264], want) {
		t.Errorf("pc bytes % x, want % x", b[256:264], want)
	}
	if binary.LittleEndian.Uint32(b[264:]) != 0x60000000 {
		t.Error("cpsr")
	}
}

func TestParsePackedInfos(t *testing.T) {
	b := make([]byte, 36)
	binary.LittleEndian.PutUint32(b[0:], 5)
	binary.LittleEndian.PutUint32(b[4:], 7)
	binary.LittleEndian.PutUint32(b[12:], 1)
	binary.LittleEndian.PutUint64(b[20:], 0x1122334455667788) // misaligned in C
	binary.LittleEndian.PutUint16(b[32:], 3)
	ri, err := ParseRegionBasicInfo64(b)
	if err != nil {
		t.Fatal(err)
	}
	if ri.Protection != VM_PROT_READ|VM_PROT_EXECUTE || ri.Protection.String() != "r-x" || !ri.Shared || ri.Offset != 0x1122334455667788 || ri.UserWiredCount != 3 {
		t.Errorf("ParseRegionBasicInfo64 = %+v", ri)
	}
	if _, err := ParseRegionBasicInfo64(b[:35]); !errors.Is(err, ErrStateSize) {
		t.Errorf("short region info: %v", err)
	}

	sb := make([]byte, 76)
	binary.LittleEndian.PutUint64(sb[12:], 0xabc)
	binary.LittleEndian.PutUint32(sb[20:], 42)
	binary.LittleEndian.PutUint32(sb[48:], 1)
	si, err := ParseRegionSubmapInfo64(sb)
	if err != nil {
		t.Fatal(err)
	}
	if si.Offset != 0xabc || si.UserTag != 42 || !si.IsSubmap {
		t.Errorf("ParseRegionSubmapInfo64 = %+v", si)
	}

	db := make([]byte, 20)
	binary.LittleEndian.PutUint64(db[0:], 0x7ff8_0000_1000)
	binary.LittleEndian.PutUint64(db[8:], 368)
	binary.LittleEndian.PutUint32(db[16:], TASK_DYLD_ALL_IMAGE_INFO_64)
	di, err := ParseTaskDyldInfo(db)
	if err != nil || di.AllImageInfoAddr != 0x7ff8_0000_1000 || di.AllImageInfoSize != 368 || di.AllImageInfoFormat != 1 {
		t.Errorf("ParseTaskDyldInfo = %+v, %v", di, err)
	}
}

func TestCSFlagsString(t *testing.T) {
	if got := (CS_VALID | CS_RUNTIME | CS_PLATFORM_BINARY | 0x40000000).String(); got != "valid,runtime,platform-binary,0x40000000" {
		t.Errorf("String() = %q", got)
	}
	if CSFlags(0).String() != "none" {
		t.Error("zero flags")
	}
}
