package tracer

import (
	"encoding/binary"
	"fmt"
)

// Field places one register inside a flat, little-endian register block.
type Field struct {
	Name   string
	Offset int // byte offset in the block
	Size   int // bytes
}

// StructLayout maps a flat register block (a ptrace regset, a Mach
// thread-state flavor, a KDP READREGS reply) onto a Layout. The order of
// Fields is the display order; offsets may be in any order.
type StructLayout struct {
	Layout *Layout
	Fields []Field
	Size   int // bytes in the block
}

// NewStructLayout builds a StructLayout. It panics if a field lies outside
// size: layouts are static tables, so that is a programming error.
func NewStructLayout(arch Arch, flavor Flavor, size int, fields []Field) *StructLayout {
	descs := make([]RegDesc, len(fields))
	for i, f := range fields {
		if f.Offset < 0 || f.Size <= 0 || f.Offset+f.Size > size {
			panic(fmt.Sprintf("tracer: register %s at %d+%d outside a %d-byte block", f.Name, f.Offset, f.Size, size))
		}
		descs[i] = RegDesc{Name: f.Name, Size: f.Size}
	}
	return &StructLayout{Layout: NewLayout(arch, flavor, descs), Fields: fields, Size: size}
}

// Decode reads a register block. A block shorter than Size is an error.
func (s *StructLayout) Decode(b []byte) (*Registers, error) {
	if len(b) < s.Size {
		return nil, fmt.Errorf("%s %s register block: %d bytes, want %d", s.Layout.arch, s.Layout.flavor, len(b), s.Size)
	}
	r := NewRegisters(s.Layout)
	for i, f := range s.Fields {
		field := b[f.Offset : f.Offset+f.Size]
		if f.Size > 8 {
			copy(r.wide[i], field)
			continue
		}
		var buf [8]byte
		copy(buf[:], field)
		r.vals[i] = binary.LittleEndian.Uint64(buf[:])
	}
	return r, nil
}

// Encode writes r into b, which must hold Size bytes. Bytes of b that no field
// covers are left as they are, so callers pass the block they last read.
func (s *StructLayout) Encode(r *Registers, b []byte) error {
	if r.layout != s.Layout {
		return fmt.Errorf("registers of another layout (%s %s)", r.Arch(), r.Flavor())
	}
	if len(b) < s.Size {
		return fmt.Errorf("%s %s register block: %d bytes, want %d", s.Layout.arch, s.Layout.flavor, len(b), s.Size)
	}
	for i, f := range s.Fields {
		field := b[f.Offset : f.Offset+f.Size]
		if f.Size > 8 {
			copy(field, r.wide[i])
			continue
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], r.vals[i])
		copy(field, buf[:f.Size])
	}
	return nil
}

// seqFields returns count fields named prefix0..prefixN-1 of size bytes each,
// laid out back to back from offset.
func seqFields(prefix string, count, offset, size int) []Field {
	out := make([]Field, count)
	for i := range out {
		out[i] = Field{Name: fmt.Sprintf("%s%d", prefix, i), Offset: offset + i*size, Size: size}
	}
	return out
}

func itoa(i int) string { return fmt.Sprint(i) }
