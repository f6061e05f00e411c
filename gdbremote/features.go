package gdbremote

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/machtrace/machtrace/tracer"
)

// Reg is one register as the stub's target description declares it.
type Reg struct {
	Name    string // as the stub names it ("rip", "eflags", "cr3")
	Num     int    // the register number used by p/P
	Bits    int    // size in bits
	Offset  int    // byte offset in the g packet
	Feature string // the feature that declared it ("org.gnu.gdb.i386.core")
	Group   string // the group attribute, if any
	Type    string // the type attribute ("int64", "code_ptr", "i387_ext")
	Flavor  tracer.Flavor
}

// Size is the register's size in bytes.
func (r Reg) Size() int { return (r.Bits + 7) / 8 }

// TargetDescription is the parsed qXfer target.xml with its includes.
type TargetDescription struct {
	Architecture string // "i386:x86-64", "aarch64"
	Arch         tracer.Arch
	Regs         []Reg // in g-packet order
	GSize        int   // bytes in a full g packet
}

type xmlTarget struct {
	Architecture string       `xml:"architecture"`
	Includes     []xmlInclude `xml:"include"`
	Features     []xmlFeature `xml:"feature"`
}

type xmlInclude struct {
	Href string `xml:"href,attr"`
}

type xmlFeature struct {
	Name     string       `xml:"name,attr"`
	Regs     []xmlReg     `xml:"reg"`
	Includes []xmlInclude `xml:"include"`
}

type xmlReg struct {
	Name    string `xml:"name,attr"`
	Bitsize string `xml:"bitsize,attr"`
	Regnum  string `xml:"regnum,attr"`
	Type    string `xml:"type,attr"`
	Group   string `xml:"group,attr"`
}

// parseTargetDescription parses target.xml, fetching included documents with
// fetch. A document may be a <target> or a bare <feature> (what includes
// usually are).
func parseTargetDescription(fetch func(name string) ([]byte, error)) (*TargetDescription, error) {
	td := &TargetDescription{}
	next := 0
	var walk func(name string, depth int) error
	addRegs := func(f xmlFeature) error {
		for _, r := range f.Regs {
			bits, err := strconv.Atoi(r.Bitsize)
			if err != nil || bits <= 0 || bits > 8192 {
				return fmt.Errorf("register %q: bad bitsize %q", r.Name, r.Bitsize)
			}
			if len(td.Regs) >= 4096 {
				return fmt.Errorf("more than 4096 registers")
			}
			num := next
			if r.Regnum != "" {
				n, err := strconv.Atoi(r.Regnum)
				if err != nil || n < 0 || n > 1<<16 {
					return fmt.Errorf("register %q: bad regnum %q", r.Name, r.Regnum)
				}
				num = n
			}
			next = num + 1
			td.Regs = append(td.Regs, Reg{Name: r.Name, Num: num, Bits: bits, Feature: f.Name, Group: r.Group, Type: r.Type})
		}
		return nil
	}
	walk = func(name string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: includes nested too deeply", name)
		}
		doc, err := fetch(name)
		if err != nil {
			return err
		}
		root, err := xmlRoot(doc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch root {
		case "target":
			var t xmlTarget
			if err := xml.Unmarshal(doc, &t); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if t.Architecture != "" {
				td.Architecture = strings.TrimSpace(t.Architecture)
			}
			// xi:include elements and features, in document order as
			// far as encoding/xml keeps it: includes first is what QEMU
			// and gdbserver emit.
			for _, inc := range t.Includes {
				if err := walk(inc.Href, depth+1); err != nil {
					return err
				}
			}
			for _, f := range t.Features {
				if err := addRegs(f); err != nil {
					return err
				}
				for _, inc := range f.Includes {
					if err := walk(inc.Href, depth+1); err != nil {
						return err
					}
				}
			}
		case "feature":
			var f xmlFeature
			if err := xml.Unmarshal(doc, &f); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := addRegs(f); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: root element <%s>, want <target> or <feature>", name, root)
		}
		return nil
	}
	if err := walk("target.xml", 0); err != nil {
		return nil, err
	}
	if len(td.Regs) == 0 {
		return nil, fmt.Errorf("target.xml declares no registers")
	}
	arch, err := tracer.ParseArch(td.Architecture)
	if err != nil {
		return nil, fmt.Errorf("target.xml: %w", err)
	}
	td.Arch = arch
	td.layout()
	return td, nil
}

// xmlRoot returns the name of the document's root element.
func xmlRoot(doc []byte) (string, error) {
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("no root element: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local, nil
		}
	}
}

// layout sorts registers by number, assigns g-packet offsets and flavors,
// and canonicalises names onto tracer's (eflags -> rflags, x29 -> fp).
func (td *TargetDescription) layout() {
	// Registers are numbered in g-packet order; a stable sort by number
	// keeps declaration order for equal numbers.
	regs := td.Regs
	for i := 1; i < len(regs); i++ {
		for j := i; j > 0 && regs[j].Num < regs[j-1].Num; j-- {
			regs[j], regs[j-1] = regs[j-1], regs[j]
		}
	}
	off := 0
	for i := range regs {
		regs[i].Offset = off
		off += regs[i].Size()
		regs[i].Flavor = classify(td.Arch, regs[i])
	}
	td.GSize = off
}

// canonicalName maps a stub's register name onto tracer's canonical one.
func canonicalName(arch tracer.Arch, name string) string {
	n := strings.ToLower(name)
	switch arch {
	case tracer.ArchAMD64:
		if n == "eflags" {
			return "rflags"
		}
	case tracer.ArchARM64:
		switch n {
		case "x29":
			return "fp"
		case "x30":
			return "lr"
		}
	}
	return n
}

var amd64System = map[string]bool{
	"cr0": true, "cr2": true, "cr3": true, "cr4": true, "cr8": true, "efer": true,
	"k_gs_base": true, "kernel_gs_base": true,
	"gdtr": true, "idtr": true, "ldtr": true, "tr": true,
}

var amd64Debug = map[string]bool{
	"dr0": true, "dr1": true, "dr2": true, "dr3": true, "dr6": true, "dr7": true,
}

// classify assigns a register to a flavor: general purpose and segment
// registers to FlavorGeneral, x87/SSE/AVX and NEON to FlavorFloat, control
// registers to FlavorSystem.
func classify(arch tracer.Arch, r Reg) tracer.Flavor {
	n := strings.ToLower(r.Name)
	feat := strings.ToLower(r.Feature)
	switch arch {
	case tracer.ArchAMD64:
		switch {
		case amd64System[n]:
			return tracer.FlavorSystem
		case amd64Debug[n]:
			return tracer.FlavorDebug
		case strings.HasPrefix(n, "st") || strings.HasPrefix(n, "xmm") || strings.HasPrefix(n, "ymm") ||
			strings.HasPrefix(n, "zmm") || strings.HasPrefix(n, "k") && len(n) == 2 ||
			n == "mxcsr" || n == "fctrl" || n == "fstat" || n == "ftag" || n == "fiseg" ||
			n == "fioff" || n == "foseg" || n == "fooff" || n == "fop":
			return tracer.FlavorFloat
		case strings.Contains(feat, "core") || strings.Contains(feat, "linux") || strings.Contains(feat, "segments"):
			return tracer.FlavorGeneral
		case strings.Contains(feat, "sse") || strings.Contains(feat, "avx"):
			return tracer.FlavorFloat
		}
		return tracer.FlavorSystem
	case tracer.ArchARM64:
		switch {
		case strings.HasSuffix(feat, ".core"):
			return tracer.FlavorGeneral
		case strings.HasSuffix(feat, ".fpu") || strings.HasSuffix(feat, ".sve"):
			return tracer.FlavorFloat
		}
		return tracer.FlavorSystem
	}
	if r.Group == "float" || r.Group == "vector" {
		return tracer.FlavorFloat
	}
	return tracer.FlavorGeneral
}

// defaultAMD64 is gdb's own numbering of amd64 registers, used only when a
// stub offers no target.xml (VMware's debugStub is one): the 24 integer and
// segment registers, x87, and SSE.
func defaultAMD64() *TargetDescription {
	td := &TargetDescription{Architecture: "i386:x86-64", Arch: tracer.ArchAMD64}
	add := func(bits int, feature string, names ...string) {
		for _, n := range names {
			td.Regs = append(td.Regs, Reg{Name: n, Num: len(td.Regs), Bits: bits, Feature: feature})
		}
	}
	core := "org.gnu.gdb.i386.core"
	add(64, core, "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
	add(32, core, "eflags", "cs", "ss", "ds", "es", "fs", "gs")
	add(80, core, "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7")
	add(32, core, "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
	sse := "org.gnu.gdb.i386.sse"
	for i := 0; i < 16; i++ {
		add(128, sse, fmt.Sprintf("xmm%d", i))
	}
	add(32, sse, "mxcsr")
	td.layout()
	return td
}
