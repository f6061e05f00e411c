package tracer

import "fmt"

// Arch is a target's instruction set.
type Arch uint8

// The architectures machtrace understands.
const (
	ArchUnknown Arch = iota
	ArchAMD64        // x86_64
	ArchARM64        // AArch64
)

// String returns the Go name of the architecture ("amd64", "arm64").
func (a Arch) String() string {
	switch a {
	case ArchAMD64:
		return "amd64"
	case ArchARM64:
		return "arm64"
	}
	return fmt.Sprintf("arch(%d)", uint8(a))
}

// ParseArch maps a GOARCH-style name to an Arch.
func ParseArch(s string) (Arch, error) {
	switch s {
	case "amd64", "x86_64", "x86-64", "i386:x86-64":
		return ArchAMD64, nil
	case "arm64", "aarch64":
		return ArchARM64, nil
	}
	return ArchUnknown, fmt.Errorf("unknown architecture %q (want amd64 or arm64)", s)
}

// PointerSize is the size of an address in bytes.
func (a Arch) PointerSize() int { return 8 }

// pcName, spName and fpName are the canonical register names for the program
// counter, stack pointer and frame pointer.
func (a Arch) pcName() string {
	if a == ArchARM64 {
		return "pc"
	}
	return "rip"
}

func (a Arch) spName() string {
	if a == ArchARM64 {
		return "sp"
	}
	return "rsp"
}

func (a Arch) fpName() string {
	if a == ArchARM64 {
		return "fp"
	}
	return "rbp"
}

// aliases maps alternative register names onto canonical ones.
func (a Arch) alias(name string) string {
	switch a {
	case ArchARM64:
		switch name {
		case "x29":
			return "fp"
		case "x30":
			return "lr"
		case "x31":
			return "sp"
		}
	case ArchAMD64:
		switch name {
		case "pc":
			return "rip"
		case "sp":
			return "rsp"
		case "fp":
			return "rbp"
		case "eflags":
			return "rflags"
		}
	}
	return name
}
