package mach

import "unsafe"

// ARMThreadState64 is arm_thread_state64_t (ARM_THREAD_STATE64, 272 bytes) in
// its non-opaque form, which is what an arm64 (not arm64e) caller receives:
// the kernel returns raw values and sets Flags to
// ARM_THREAD_STATE64_FLAGS_NO_PTRAUTH. Lr (and return addresses saved by
// arm64e code) may still carry a pointer-authentication signature; strip it
// before using it as an address.
type ARMThreadState64 struct {
	X     [29]uint64 // x0..x28
	Fp    uint64     // x29
	Lr    uint64     // x30
	Sp    uint64
	Pc    uint64
	Cpsr  uint32
	Flags uint32 // __pad in the SDK; ptrauth flags in the opaque form
}

// ARM_THREAD_STATE64_FLAGS_NO_PTRAUTH is set in ARMThreadState64.Flags when
// the values are not signed (__DARWIN_ARM_THREAD_STATE64_FLAGS_NO_PTRAUTH).
const ARM_THREAD_STATE64_FLAGS_NO_PTRAUTH = 0x1

// ARMNeonState64 is arm_neon_state64_t (ARM_NEON_STATE64, 528 bytes): v0-v31
// as 128-bit little-endian values, FPSR and FPCR, padded to 16 bytes.
type ARMNeonState64 struct {
	V    [32][16]byte
	Fpsr uint32
	Fpcr uint32
	_    [8]byte
}

// ARMDebugState64 is arm_debug_state64_t (ARM_DEBUG_STATE64, 520 bytes):
// breakpoint and watchpoint value and control registers, and MDSCR_EL1.
type ARMDebugState64 struct {
	Bvr      [16]uint64
	Bcr      [16]uint64
	Wvr      [16]uint64
	Wcr      [16]uint64
	MdscrEL1 uint64
}

// ARMExceptionState64 is arm_exception_state64_t (ARM_EXCEPTION_STATE64, 16
// bytes): the fault address, syndrome register and exception number.
type ARMExceptionState64 struct {
	Far       uint64
	Esr       uint32
	Exception uint32
}

var (
	armThreadFields = (&fieldList{}).series("x", 0, 29, 8).
			add("fp", 8).add("lr", 8).add("sp", 8).add("pc", 8).add("cpsr", 4).fields // the flags word is not a register
	armNeonFields  = (&fieldList{}).series("v", 0, 32, 16).add("fpsr", 4).add("fpcr", 4).fields
	armDebugFields = (&fieldList{}).series("bvr", 0, 16, 8).series("bcr", 0, 16, 8).
			series("wvr", 0, 16, 8).series("wcr", 0, 16, 8).add("mdscr_el1", 8).fields
	armExceptionFields = (&fieldList{}).add("far", 8).add("esr", 4).add("exception", 4).fields
)

// Flavor implements State.
func (*ARMThreadState64) Flavor() StateFlavor { return ARM_THREAD_STATE64 }

// Count implements State.
func (*ARMThreadState64) Count() uint32 { return ARM_THREAD_STATE64_COUNT }

// Fields implements State.
func (*ARMThreadState64) Fields() []Field { return armThreadFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *ARMThreadState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *ARMThreadState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "ARM_THREAD_STATE64", b)
}

func (s *ARMThreadState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*ARMNeonState64) Flavor() StateFlavor { return ARM_NEON_STATE64 }

// Count implements State.
func (*ARMNeonState64) Count() uint32 { return ARM_NEON_STATE64_COUNT }

// Fields implements State.
func (*ARMNeonState64) Fields() []Field { return armNeonFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *ARMNeonState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *ARMNeonState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "ARM_NEON_STATE64", b)
}

func (s *ARMNeonState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*ARMDebugState64) Flavor() StateFlavor { return ARM_DEBUG_STATE64 }

// Count implements State.
func (*ARMDebugState64) Count() uint32 { return ARM_DEBUG_STATE64_COUNT }

// Fields implements State.
func (*ARMDebugState64) Fields() []Field { return armDebugFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *ARMDebugState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *ARMDebugState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "ARM_DEBUG_STATE64", b)
}

func (s *ARMDebugState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }

// Flavor implements State.
func (*ARMExceptionState64) Flavor() StateFlavor { return ARM_EXCEPTION_STATE64 }

// Count implements State.
func (*ARMExceptionState64) Count() uint32 { return ARM_EXCEPTION_STATE64_COUNT }

// Fields implements State.
func (*ARMExceptionState64) Fields() []Field { return armExceptionFields }

// MarshalBinary implements encoding.BinaryMarshaler (little-endian).
func (s *ARMExceptionState64) MarshalBinary() ([]byte, error) { return marshalState(s) }

// UnmarshalBinary implements encoding.BinaryUnmarshaler (little-endian).
func (s *ARMExceptionState64) UnmarshalBinary(b []byte) error {
	return unmarshalState(s, "ARM_EXCEPTION_STATE64", b)
}

func (s *ARMExceptionState64) ptr() unsafe.Pointer { return unsafe.Pointer(s) }
