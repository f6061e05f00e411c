package tracer

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Flavor names a class of thread state, in the spirit of Mach's
// thread_state_flavor_t. Backends map it to their own requests (a Mach flavor
// number, a ptrace regset, a GDB register group).
type Flavor uint8

// The flavors of thread state.
const (
	FlavorGeneral   Flavor = iota // general-purpose registers, PC, SP, flags
	FlavorFloat                   // FP and SIMD registers (x87/SSE/AVX, NEON)
	FlavorDebug                   // hardware debug registers
	FlavorException               // the last exception's state (fault address, error code)
	FlavorSystem                  // control and system registers (CR0-CR4, EFER, ...) where a stub exposes them
)

// String returns a short lower-case name of the flavor.
func (f Flavor) String() string {
	switch f {
	case FlavorGeneral:
		return "general"
	case FlavorFloat:
		return "float"
	case FlavorDebug:
		return "debug"
	case FlavorException:
		return "exception"
	case FlavorSystem:
		return "system"
	}
	return fmt.Sprintf("flavor(%d)", uint8(f))
}

// RegDesc describes one register of a layout.
type RegDesc struct {
	Name string // lower-case canonical name ("rax", "x0", "xmm3")
	Size int    // bytes: 1 to 8 for scalar registers, more for vector registers
}

// Layout is an ordered, immutable set of register descriptions for one
// architecture and flavor. Layouts are built once per backend and shared by
// every Registers value that uses them, so reading a register by name costs a
// map lookup and no allocation.
type Layout struct {
	arch   Arch
	flavor Flavor
	descs  []RegDesc
	index  map[string]int
	pc     int
	sp     int
	fp     int
}

// NewLayout builds a Layout. Names are matched case-insensitively; the order of
// descs is the display order.
func NewLayout(arch Arch, flavor Flavor, descs []RegDesc) *Layout {
	l := &Layout{arch: arch, flavor: flavor, descs: make([]RegDesc, len(descs)), index: make(map[string]int, len(descs)), pc: -1, sp: -1, fp: -1}
	for i, d := range descs {
		d.Name = strings.ToLower(d.Name)
		if d.Size <= 0 {
			d.Size = 8
		}
		l.descs[i] = d
		l.index[d.Name] = i
	}
	l.pc = l.lookup(arch.pcName())
	l.sp = l.lookup(arch.spName())
	l.fp = l.lookup(arch.fpName())
	return l
}

func (l *Layout) lookup(name string) int {
	name = strings.ToLower(name)
	if i, ok := l.index[name]; ok {
		return i
	}
	if i, ok := l.index[l.arch.alias(name)]; ok {
		return i
	}
	return -1
}

// Arch returns the layout's architecture.
func (l *Layout) Arch() Arch { return l.arch }

// Flavor returns the layout's flavor.
func (l *Layout) Flavor() Flavor { return l.flavor }

// Descs returns the register descriptions in display order. The slice must not
// be modified.
func (l *Layout) Descs() []RegDesc { return l.descs }

// Index returns the position of the named register, or -1.
func (l *Layout) Index(name string) int { return l.lookup(name) }

// Registers is one thread's register state of one flavor: an arch-tagged
// value with named access and a stable display order.
type Registers struct {
	layout *Layout
	vals   []uint64 // registers of at most 8 bytes
	wide   [][]byte // little-endian bytes of registers wider than 8 bytes (nil otherwise)
}

// NewRegisters returns a zeroed register set of the given layout.
func NewRegisters(l *Layout) *Registers {
	r := &Registers{layout: l, vals: make([]uint64, len(l.descs))}
	for i, d := range l.descs {
		if d.Size > 8 {
			if r.wide == nil {
				r.wide = make([][]byte, len(l.descs))
			}
			r.wide[i] = make([]byte, d.Size)
		}
	}
	return r
}

// Layout returns the register set's layout.
func (r *Registers) Layout() *Layout { return r.layout }

// Arch returns the architecture the registers belong to.
func (r *Registers) Arch() Arch { return r.layout.arch }

// Flavor returns the flavor of the register set.
func (r *Registers) Flavor() Flavor { return r.layout.flavor }

// Len is the number of registers.
func (r *Registers) Len() int { return len(r.vals) }

// Desc returns the description of register i (display order).
func (r *Registers) Desc(i int) RegDesc { return r.layout.descs[i] }

// At returns the value of register i; for a register wider than 8 bytes it is
// the low 8 bytes.
func (r *Registers) At(i int) uint64 {
	if r.wide != nil && r.wide[i] != nil {
		return binary.LittleEndian.Uint64(r.wide[i])
	}
	return r.vals[i]
}

// BytesAt returns register i as little-endian bytes of its size.
func (r *Registers) BytesAt(i int) []byte {
	if r.wide != nil && r.wide[i] != nil {
		return r.wide[i]
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, r.vals[i])
	return b[:r.layout.descs[i].Size]
}

// SetAt sets register i. A value that does not fit the register's size is
// truncated by the caller's choice of value; SetAt masks it.
func (r *Registers) SetAt(i int, v uint64) {
	if r.wide != nil && r.wide[i] != nil {
		clear(r.wide[i])
		binary.LittleEndian.PutUint64(r.wide[i], v)
		return
	}
	if sz := r.layout.descs[i].Size; sz < 8 {
		v &= (1 << (8 * uint(sz))) - 1
	}
	r.vals[i] = v
}

// SetBytesAt sets register i from little-endian bytes (shorter input is
// zero-extended).
func (r *Registers) SetBytesAt(i int, b []byte) error {
	size := r.layout.descs[i].Size
	if len(b) > size {
		return fmt.Errorf("register %s is %d bytes, value has %d", r.layout.descs[i].Name, size, len(b))
	}
	if r.wide != nil && r.wide[i] != nil {
		clear(r.wide[i])
		copy(r.wide[i], b)
		return nil
	}
	var buf [8]byte
	copy(buf[:], b)
	r.vals[i] = binary.LittleEndian.Uint64(buf[:])
	return nil
}

// Get returns the named register's value (the low 8 bytes for vector
// registers). Names are case-insensitive and accept the usual aliases (pc,
// sp, fp on amd64; x29, x30 on arm64).
func (r *Registers) Get(name string) (uint64, bool) {
	i := r.layout.lookup(name)
	if i < 0 {
		return 0, false
	}
	return r.At(i), true
}

// Set writes the named register. It returns an *UnknownRegisterError for a
// name the layout lacks.
func (r *Registers) Set(name string, v uint64) error {
	i := r.layout.lookup(name)
	if i < 0 {
		return &UnknownRegisterError{Name: name, Arch: r.layout.arch, Flavor: r.layout.flavor}
	}
	r.SetAt(i, v)
	return nil
}

// PC returns the program counter (0 if the flavor has none).
func (r *Registers) PC() uint64 { return r.pick(r.layout.pc) }

// SP returns the stack pointer.
func (r *Registers) SP() uint64 { return r.pick(r.layout.sp) }

// FP returns the frame pointer.
func (r *Registers) FP() uint64 { return r.pick(r.layout.fp) }

// LR returns the link register on arm64 (0 elsewhere).
func (r *Registers) LR() uint64 {
	if r.layout.arch != ArchARM64 {
		return 0
	}
	v, _ := r.Get("lr")
	return v
}

func (r *Registers) pick(i int) uint64 {
	if i < 0 {
		return 0
	}
	return r.vals[i]
}

// Clone returns an independent copy.
func (r *Registers) Clone() *Registers {
	c := &Registers{layout: r.layout, vals: append([]uint64(nil), r.vals...)}
	if r.wide != nil {
		c.wide = make([][]byte, len(r.wide))
		for i, w := range r.wide {
			if w != nil {
				c.wide[i] = append([]byte(nil), w...)
			}
		}
	}
	return c
}

// UnknownRegisterError reports a register name that a layout does not have.
type UnknownRegisterError struct {
	Name   string
	Arch   Arch
	Flavor Flavor
}

func (e *UnknownRegisterError) Error() string {
	return fmt.Sprintf("no register %q in the %s %s state (list them with `machtrace regs`)", e.Name, e.Arch, e.Flavor)
}
