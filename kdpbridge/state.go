package kdpbridge

import (
	"fmt"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/mach"
	"github.com/machtrace/machtrace/tracer"
)

// This file converts between KDP thread-state images (the Mach
// x86_THREAD_STATE64 / ARM_THREAD_STATE64 layouts READREGS and WRITEREGS
// carry, kdp-protocol.md section 8, mach-api.md section 4.3; offsets from
// package mach's portable structs) and tracer.Registers. The server encodes
// any backend's registers by name; the KDP target adapter decodes images into
// layouts named after the Mach fields.

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

// aliases are the names other backends give some Mach registers.
var aliases = map[string][]string{
	"rflags": {"eflags"},
	"fcw":    {"cwd"},
	"fsw":    {"swd"},
	"fip":    {"fioff"},
	"fcs":    {"fiseg"},
	"fdp":    {"fooff"},
	"fds":    {"foseg"},
	"cpsr":   {"pstate"},
}

// fromMach builds a stateLayout from package mach's field table of a state
// struct, the one source of the Mach layouts.
func fromMach(arch tracer.Arch, flavor tracer.Flavor, st mach.State, readOnly ...string) *stateLayout {
	var fields []stateField
	for _, f := range st.Fields() {
		if f.Name == "flags" && arch == tracer.ArchARM64 {
			continue // ARM_THREAD_STATE64's pad, not a register
		}
		fields = append(fields, stateField{names: append([]string{f.Name}, aliases[f.Name]...), off: f.Offset, size: f.Size})
	}
	sl := &stateLayout{arch: arch, flavor: flavor, size: int(st.Count()) * 4, fields: fields, readOnly: map[string]bool{}}
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

// The images KDP peers exchange: x86_THREAD_STATE64 (flavor 4, 168 bytes),
// x86_FLOAT_STATE64 (5, 524 bytes), ARM_THREAD_STATE64 (6, 272 bytes) and
// ARM_NEON_STATE64 (17, 528 bytes). WRITEREGS leaves the segment selectors
// alone (XNU ignores cs; a Linux process must keep its own).
var (
	x86ThreadState64 = fromMach(tracer.ArchAMD64, tracer.FlavorGeneral, &mach.X86ThreadState64{}, "cs", "fs", "gs")
	x86FloatState64  = fromMach(tracer.ArchAMD64, tracer.FlavorFloat, &mach.X86FloatState64{})
	armThreadState64 = fromMach(tracer.ArchARM64, tracer.FlavorGeneral, &mach.ARMThreadState64{})
	armNeonState64   = fromMach(tracer.ArchARM64, tracer.FlavorFloat, &mach.ARMNeonState64{})
)

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
