package mach

import "unsafe"

// X86ThreadState64 is x86_thread_state64_t (x86_THREAD_STATE64, 168 bytes).
// thread_set_state requires exactly X86_THREAD_STATE64_COUNT words.
type X86ThreadState64 struct {
	Rax, Rbx, Rcx, Rdx, Rdi, Rsi, Rbp, Rsp uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	Rip, Rflags, Cs, Fs, Gs                uint64
}

// X86FloatState64 is x86_float_state64_t (x86_FLOAT_STATE64, 524 bytes):
// the x87/SSE FXSAVE image. Stmm holds st0-st7 (10 significant bytes of 16).
type X86FloatState64 struct {
	FPUReserved [2]int32
	Fcw         uint16 // x87 control word
	Fsw         uint16 // x87 status word
	Ftw         uint8  // abridged tag word
	_           uint8
	Fop         uint16
	IP          uint32 // x87 instruction pointer (offset)
	CS          uint16
	_           uint16
	DP          uint32 // x87 data pointer (offset)
	DS          uint16
	_           uint16
	Mxcsr       uint32
	MxcsrMask   uint32
	Stmm        [8][16]byte
	Xmm         [16][16]byte
	_           [96]byte
	Reserved1   int32
}

// X86AVXState64 is x86_avx_state64_t (x86_AVX_STATE64, 844 bytes): the float
// state followed by the upper halves of ymm0-15. get and set both require
// exactly X86_AVX_STATE64_COUNT words; the kernel fails without AVX.
type X86AVXState64 struct {
	X86FloatState64
	AVXReserved1 [64]byte
	Ymmh         [16][16]byte
}

// X86AVX512State64 is x86_avx512_state64_t (x86_AVX512_STATE64, 2444 bytes):
// the AVX state, the opmask registers k0-7, the upper halves of zmm0-15 and
// all of zmm16-31. Valid only for threads whose xstate is AVX-512.
type X86AVX512State64 struct {
	X86AVXState64
	K    [8][8]byte
	Zmmh [16][32]byte
	Zmm  [16][64]byte // zmm16..zmm31
}

// X86DebugState64 is x86_debug_state64_t (x86_DEBUG_STATE64, 64 bytes).
type X86DebugState64 struct {
	Dr [8]uint64 // dr0..dr7
}

// X86ExceptionState64 is x86_exception_state64_t (x86_EXCEPTION_STATE64, 16 bytes).
type X86ExceptionState64 struct {
	Trapno     uint16
	CPU        uint16
	Err        uint32
	Faultvaddr uint64
}

var (
	x86ThreadFields = (&fieldList{}).
			add("rax", 8).add("rbx", 8).add("rcx", 8).add("rdx", 8).
			add("rdi", 8).add("rsi", 8).add("rbp", 8).add("rsp", 8).
			series("r", 8, 8, 8).
			add("rip", 8).add("rflags", 8).add("cs", 8).add("fs", 8).add("gs", 8).fields
	x86FloatFields  = x86FloatList().fields
	x86AVXFields    = x86AVXList().fields
	x86AVX512Fields = x86AVXList().
			series("k", 0, 8, 8).series("zmmh", 0, 16, 32).series("zmm", 16, 16, 64).fields
	x86DebugFields     = (&fieldList{}).series("dr", 0, 8, 8).fields
	x86ExceptionFields = (&fieldList{}).add("trapno", 2).add("cpu", 2).add("err", 4).add("faultvaddr", 8).fields
)

func x86FloatList() *fieldList {
	return (&fieldList{}).skip(8).
		add("fcw", 2).add("fsw", 2).add("ftw", 1).skip(1).add("fop", 2).
		add("fip", 4).add("fcs", 2).skip(2).add("fdp", 4).add("fds", 2).skip(2).
		add("mxcsr", 4).add("mxcsr_mask", 4).
		stride("st", 8, 10, 16).
		series("xmm", 0, 16, 16).
		skip(96 + 4)
}

func x86AVXList() *fieldList {
	return x86FloatList().skip(64).series("ymmh", 0, 16, 16)
}

// Flavor implements State.
func (*X86ThreadState64) Flavor() StateFlavor { return X86_THREAD_STATE64 }

// Count implements State.
func (*X86ThreadState64) Count() uint32 { return X86_THREAD_STATE64_COUNT }

// Fields implements State.
func (*X86ThreadState64) Fields() []Field { return x86ThreadFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86ThreadState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86ThreadState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_THREAD_STATE64", b)
}

func (s *X86ThreadState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*X86FloatState64) Flavor() StateFlavor { return X86_FLOAT_STATE64 }

// Count implements State.
func (*X86FloatState64) Count() uint32 { return X86_FLOAT_STATE64_COUNT }

// Fields implements State.
func (*X86FloatState64) Fields() []Field { return x86FloatFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86FloatState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86FloatState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_FLOAT_STATE64", b)
}

func (s *X86FloatState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*X86AVXState64) Flavor() StateFlavor { return X86_AVX_STATE64 }

// Count implements State.
func (*X86AVXState64) Count() uint32 { return X86_AVX_STATE64_COUNT }

// Fields implements State.
func (*X86AVXState64) Fields() []Field { return x86AVXFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86AVXState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86AVXState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_AVX_STATE64", b)
}

func (s *X86AVXState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*X86AVX512State64) Flavor() StateFlavor { return X86_AVX512_STATE64 }

// Count implements State.
func (*X86AVX512State64) Count() uint32 { return X86_AVX512_STATE64_COUNT }

// Fields implements State.
func (*X86AVX512State64) Fields() []Field { return x86AVX512Fields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86AVX512State64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86AVX512State64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_AVX512_STATE64", b)
}

func (s *X86AVX512State64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*X86DebugState64) Flavor() StateFlavor { return X86_DEBUG_STATE64 }

// Count implements State.
func (*X86DebugState64) Count() uint32 { return X86_DEBUG_STATE64_COUNT }

// Fields implements State.
func (*X86DebugState64) Fields() []Field { return x86DebugFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86DebugState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86DebugState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_DEBUG_STATE64", b)
}

func (s *X86DebugState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*X86ExceptionState64) Flavor() StateFlavor { return X86_EXCEPTION_STATE64 }

// Count implements State.
func (*X86ExceptionState64) Count() uint32 { return X86_EXCEPTION_STATE64_COUNT }

// Fields implements State.
func (*X86ExceptionState64) Fields() []Field { return x86ExceptionFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *X86ExceptionState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *X86ExceptionState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "x86_EXCEPTION_STATE64", b)
}

func (s *X86ExceptionState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }
