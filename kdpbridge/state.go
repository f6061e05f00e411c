package kdpbridge

import (
	"fmt"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// This file converts between KDP thread-state images (the Mach
// x86_THREAD_STATE64 / ARM_THREAD_STATE64 layouts READREGS and WRITEREGS
// carry, kdp-protocol.md section 8, mach-api.md section 4.3) and
// tracer.Registers. The server encodes any backend's registers by name; the
// KDP target adapter decodes images into layouts named after the Mach fields.

// stateField is one register of a thread-state image.
type stateField struct {
	names []string // canonical Mach name first, then names other backends use
	off   int
	size  int
}

// stateLayout describes one (CPU type, flavor) image.
type stateLayout struct {
	arch   tracer.Arch
	flavor tracer.Flavor
	size   int
	fields []stateField
	// readOnly names fields a WRITEREGS does not apply (XNU ignores cs; a
	// ptrace target must not have its segment selectors changed).
	readOnly map[string]bool
	layout   *tracer.Layout
}

func u64Fields(off int, names ...string) []stateField {
	f := make([]stateField, len(names))
	for i, n := range names {
		f[i] = stateField{names: []string{n}, off: off + 8*i, size: 8}
	}
	return f
}

func newStateLayout(arch tracer.Arch, flavor tracer.Flavor, size int, fields []stateField, readOnly ...string) *stateLayout {
	sl := &stateLayout{arch: arch, flavor: flavor, size: size, fields: fields, readOnly: map[string]bool{}}
	for _, n := range readOnly {
		sl.readOnly[n] = true
	}
	descs := make([]tracer.RegDesc, len(fields))
	for i, f := range fields {
		descs[i] = tracer.RegDesc{Name: f.names[0], Size: f.size}
	}
	sl.layout = tracer.NewLayout(arch, flavor, descs)
	return sl
}

// x86ThreadState64 is x86_THREAD_STATE64 (flavor 4, 168 bytes).
var x86ThreadState64 = func() *stateLayout {
	f := u64Fields(0, "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "rbp", "rsp",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags", "cs", "fs", "gs")
	f[17].names = append(f[17].names, "eflags")
	return newStateLayout(tracer.ArchAMD64, tracer.FlavorGeneral, kdp.X86ThreadState64Size, f, "cs", "fs", "gs")
}()

// x86FloatState64 is x86_FLOAT_STATE64 (flavor 5, 524 bytes): the FXSAVE
// image shifted by 8.
var x86FloatState64 = func() *stateLayout {
	f := []stateField{
		{names: []string{"fcw", "cwd"}, off: 8, size: 2},
		{names: []string{"fsw", "swd"}, off: 10, size: 2},
		{names: []string{"ftw"}, off: 12, size: 1},
		{names: []string{"fop"}, off: 14, size: 2},
		{names: []string{"fioff", "fip"}, off: 16, size: 4},
		{names: []string{"fiseg", "fcs"}, off: 20, size: 2},
		{names: []string{"fooff", "fdp"}, off: 24, size: 4},
		{names: []string{"foseg", "fds"}, off: 28, size: 2},
		{names: []string{"mxcsr"}, off: 32, size: 4},
		{names: []string{"mxcsrmask", "mxcsr_mask"}, off: 36, size: 4},
	}
	for i := range 8 {
		f = append(f, stateField{names: []string{fmt.Sprintf("st%d", i)}, off: 40 + 16*i, size: 10})
	}
	for i := range 16 {
		f = append(f, stateField{names: []string{fmt.Sprintf("xmm%d", i)}, off: 168 + 16*i, size: 16})
	}
	return newStateLayout(tracer.ArchAMD64, tracer.FlavorFloat, kdp.X86FloatState64Size, f)
}()

// armThreadState64 is ARM_THREAD_STATE64 (flavor 6, 272 bytes).
var armThreadState64 = func() *stateLayout {
	names := make([]string, 29)
	for i := range names {
		names[i] = fmt.Sprintf("x%d", i)
	}
	f := u64Fields(0, names...)
	f = append(f, u64Fields(232, "fp", "lr", "sp", "pc")...)
	f = append(f, stateField{names: []string{"cpsr", "pstate"}, off: 264, size: 4})
	return newStateLayout(tracer.ArchARM64, tracer.FlavorGeneral, kdp.ARMThreadState64Size, f)
}()

// armNeonState64 is ARM_NEON_STATE64 (flavor 17, 528 bytes).
var armNeonState64 = func() *stateLayout {
	var f []stateField
	for i := range 32 {
		f = append(f, stateField{names: []string{fmt.Sprintf("v%d", i), fmt.Sprintf("q%d", i)}, off: 16 * i, size: 16})
	}
	f = append(f, stateField{names: []string{"fpsr"}, off: 512, size: 4}, stateField{names: []string{"fpcr"}, off: 516, size: 4})
	return newStateLayout(tracer.ArchARM64, tracer.FlavorFloat, kdp.ARMNeonState64Size, f)
}()

// cpuTypeOf returns the HOSTINFO CPU type and subtype for an architecture.
func cpuTypeOf(a tracer.Arch) (cpuType, subtype uint32, err error) {
	switch a {
	case tracer.ArchAMD64:
		return kdp.CPUTypeX86_64, 3, nil // CPU_SUBTYPE_X86_64_ALL
	case tracer.ArchARM64:
		return kdp.CPUTypeARM64, 0, nil // CPU_SUBTYPE_ARM64_ALL
	}
	return 0, 0, fmt.Errorf("kdp: no Mach CPU type for architecture %s", a)
}

// archOf maps a HOSTINFO CPU type to an architecture.
func archOf(cpuType uint32) (tracer.Arch, error) {
	switch cpuType {
	case kdp.CPUTypeX86_64:
		return tracer.ArchAMD64, nil
	case kdp.CPUTypeARM64:
		return tracer.ArchARM64, nil
	}
	return tracer.ArchUnknown, fmt.Errorf("kdp: unsupported CPU type %#x (want x86_64 %#x or arm64 %#x)", cpuType, kdp.CPUTypeX86_64, kdp.CPUTypeARM64)
}

// layoutFor returns the image layout of a KDP flavor number on an
// architecture, or nil.
func layoutFor(a tracer.Arch, flavor uint32) *stateLayout {
	switch {
	case a == tracer.ArchAMD64 && flavor == kdp.X86ThreadState64:
		return x86ThreadState64
	case a == tracer.ArchAMD64 && flavor == kdp.X86FloatState64:
		return x86FloatState64
	case a == tracer.ArchARM64 && flavor == kdp.ARMThreadState64:
		return armThreadState64
	case a == tracer.ArchARM64 && flavor == kdp.ARMNeonState64:
		return armNeonState64
	}
	return nil
}

// kdpFlavor maps a tracer flavor to the KDP flavor number on an architecture.
func kdpFlavor(a tracer.Arch, f tracer.Flavor) (uint32, bool) {
	switch {
	case a == tracer.ArchAMD64 && f == tracer.FlavorGeneral:
		return kdp.X86ThreadState64, true
	case a == tracer.ArchAMD64 && f == tracer.FlavorFloat:
		return kdp.X86FloatState64, true
	case a == tracer.ArchARM64 && f == tracer.FlavorGeneral:
		return kdp.ARMThreadState64, true
	case a == tracer.ArchARM64 && f == tracer.FlavorFloat:
		return kdp.ARMNeonState64, true
	}
	return 0, false
}

// index finds a field in a register set by any of its names.
func (f *stateField) index(r *tracer.Registers) int {
	for _, n := range f.names {
		if i := r.Layout().Index(n); i >= 0 {
			return i
		}
	}
	return -1
}

// encode writes the registers of r that the image has into a new image;
// registers r lacks stay zero.
func (sl *stateLayout) encode(r *tracer.Registers) []byte {
	img := make([]byte, sl.size)
	if r == nil {
		return img
	}
	for k := range sl.fields {
		f := &sl.fields[k]
		i := f.index(r)
		if i < 0 {
			continue
		}
		copy(img[f.off:f.off+f.size], r.BytesAt(i))
	}
	return img
}

// decode builds registers in the Mach layout from an image. A short image
// leaves the missing registers zero.
func (sl *stateLayout) decode(img []byte) *tracer.Registers {
	r := tracer.NewRegisters(sl.layout)
	for i, f := range sl.fields {
		if f.off >= len(img) {
			continue
		}
		end := min(f.off+f.size, len(img))
		_ = r.SetBytesAt(i, img[f.off:end])
	}
	return r
}

// apply copies the writable registers of an image into dst (any layout),
// leaving registers the image lacks untouched.
func (sl *stateLayout) apply(dst *tracer.Registers, img []byte) {
	for k := range sl.fields {
		f := &sl.fields[k]
		if sl.readOnly[f.names[0]] || f.off+f.size > len(img) {
			continue
		}
		i := f.index(dst)
		if i < 0 {
			continue
		}
		v := img[f.off : f.off+f.size]
		if sz := dst.Desc(i).Size; sz < len(v) {
			v = v[:sz]
		}
		_ = dst.SetBytesAt(i, v)
	}
}
