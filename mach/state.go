package mach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// State is a thread-state structure with the exact memory layout the kernel
// uses for its flavor. Every implementation is a pointer to a fixed-size
// struct without Go pointers, so the cgo layer hands it to thread_get_state
// directly, and MarshalBinary yields the bytes KDP puts on the wire.
type State interface {
	// Flavor is the thread_state_flavor_t.
	Flavor() StateFlavor
	// Count is the size in 32-bit words (the flavor's _COUNT).
	Count() uint32
	// Fields describes the registers in the struct, in display order.
	Fields() []Field
	// MarshalBinary returns the struct as little-endian bytes, Count()*4 long.
	MarshalBinary() ([]byte, error)
	// UnmarshalBinary decodes exactly Count()*4 little-endian bytes.
	UnmarshalBinary([]byte) error
	// ptr returns the struct's address for the cgo layer.
	ptr() unsafe.Pointer
}

// Field is one register inside a State: its name (lower case, as machtrace
// displays it), byte offset and size. Registers wider than 8 bytes (vector
// registers) are little-endian byte strings.
type Field struct {
	Name   string
	Offset int
	Size   int
}

// ErrStateSize reports a byte slice of the wrong length for a state struct.
var ErrStateSize = errors.New("wrong thread state size")

// ByteOrder is the order of state structs in memory and on the KDP wire:
// both darwin architectures are little-endian.
var ByteOrder = binary.LittleEndian

func marshalState(s State) ([]byte, error) {
	return binary.Append(make([]byte, 0, s.Count()*4), ByteOrder, s)
}

func unmarshalState(s State, name string, b []byte) error {
	if want := int(s.Count()) * 4; len(b) != want {
		return fmt.Errorf("%s: %w: want %d bytes, got %d", name, ErrStateSize, want, len(b))
	}
	_, err := binary.Decode(b, ByteOrder, s)
	return err
}

// fieldList builds a Field table from consecutive (name, size) runs, with
// explicit gaps for reserved bytes. It panics on a malformed table, which
// the package's tests exercise.
type fieldList struct {
	fields []Field
	off    int
}

func (l *fieldList) add(name string, size int) *fieldList {
	l.fields = append(l.fields, Field{Name: name, Offset: l.off, Size: size})
	l.off += size
	return l
}

// series adds n registers named prefix+i, each size bytes.
func (l *fieldList) series(prefix string, first, n, size int) *fieldList {
	for i := 0; i < n; i++ {
		l.add(fmt.Sprintf("%s%d", prefix, first+i), size)
	}
	return l
}

// skip leaves size reserved bytes.
func (l *fieldList) skip(size int) *fieldList { l.off += size; return l }

// stride adds n registers of size bytes spaced every step bytes.
func (l *fieldList) stride(prefix string, n, size, step int) *fieldList {
	for i := 0; i < n; i++ {
		l.fields = append(l.fields, Field{Name: fmt.Sprintf("%s%d", prefix, i), Offset: l.off, Size: size})
		l.off += step
	}
	return l
}

// NewState returns a zeroed State for a flavor of the given architecture
// ("amd64" or "arm64", as GOARCH spells them), or an error wrapping
// ErrUnsupportedState.
func NewState(goarch string, f StateFlavor) (State, error) {
	switch goarch {
	case "amd64":
		switch f {
		case X86_THREAD_STATE64:
			return new(X86ThreadState64), nil
		case X86_FLOAT_STATE64:
			return new(X86FloatState64), nil
		case X86_AVX_STATE64:
			return new(X86AVXState64), nil
		case X86_AVX512_STATE64:
			return new(X86AVX512State64), nil
		case X86_DEBUG_STATE64:
			return new(X86DebugState64), nil
		case X86_EXCEPTION_STATE64:
			return new(X86ExceptionState64), nil
		}
	case "arm64":
		switch f {
		case ARM_THREAD_STATE64:
			return new(ARMThreadState64), nil
		case ARM_NEON_STATE64:
			return new(ARMNeonState64), nil
		case ARM_DEBUG_STATE64:
			return new(ARMDebugState64), nil
		case ARM_EXCEPTION_STATE64:
			return new(ARMExceptionState64), nil
		}
	}
	return nil, fmt.Errorf("flavor %d on %s: %w", f, goarch, ErrUnsupportedState)
}
