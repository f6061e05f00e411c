package tracer

import (
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// Instruction is one decoded machine instruction.
type Instruction struct {
	Addr  uint64 // address of the first byte
	Len   int    // length in bytes
	Bytes []byte // the instruction's bytes (a slice of the input)
	// Text is the instruction in Intel syntax (amd64) or GNU syntax
	// (arm64). Branch targets and PC-relative operands are shown as
	// absolute addresses followed by "<symbol>" when symname knows them.
	// Bytes that do not decode read "(bad)".
	Text string
}

// String formats the instruction as "addr: bytes  text".
func (in Instruction) String() string {
	return fmt.Sprintf("%#x: % x\t%s", in.Addr, in.Bytes, in.Text)
}

// badText is the text of bytes that do not decode, as objdump writes it.
const badText = "(bad)"

// Disassemble decodes code, which starts at address addr, until it runs out.
// symname, which may be nil, names addresses ("main.run", "main.run+0x1c");
// Symbolizer.SymName fits. Undecodable bytes give a "(bad)" instruction of one
// byte (amd64) or four (arm64) and decoding goes on after it. An unknown arch
// yields nil.
func Disassemble(arch Arch, code []byte, addr uint64, symname func(uint64) (string, bool)) []Instruction {
	if symname == nil {
		symname = func(uint64) (string, bool) { return "", false }
	}
	var out []Instruction
	switch arch {
	case ArchAMD64:
		for off := 0; off < len(code); {
			in := decodeX86(code[off:], addr+uint64(off), symname)
			out = append(out, in)
			off += in.Len
		}
	case ArchARM64:
		for off := 0; off < len(code); {
			in := decodeARM64(code[off:], addr+uint64(off), symname)
			out = append(out, in)
			off += in.Len
		}
	}
	return out
}

func decodeX86(code []byte, pc uint64, symname func(uint64) (string, bool)) Instruction {
	inst, err := x86asm.Decode(code, 64)
	if err != nil || inst.Len == 0 || inst.Op == 0 {
		return Instruction{Addr: pc, Len: 1, Bytes: code[:1], Text: badText}
	}
	var b strings.Builder
	b.WriteString(x86asm.IntelSyntax(inst, pc, nil))
	next := pc + uint64(inst.Len)
	for _, a := range inst.Args {
		switch a := a.(type) {
		case x86asm.Rel:
			if pc == 0 {
				continue // IntelSyntax printed ".+rel"
			}
			if name, ok := symname(next + uint64(int64(a))); ok {
				fmt.Fprintf(&b, " <%s>", name)
			}
		case x86asm.Mem:
			if a.Base == x86asm.RIP && a.Index == 0 {
				target := next + uint64(a.Disp)
				fmt.Fprintf(&b, "\t# %#x", target)
				if name, ok := symname(target); ok {
					fmt.Fprintf(&b, " <%s>", name)
				}
			}
		}
	}
	return Instruction{Addr: pc, Len: inst.Len, Bytes: code[:inst.Len], Text: b.String()}
}

func decodeARM64(code []byte, pc uint64, symname func(uint64) (string, bool)) Instruction {
	if len(code) < 4 {
		return Instruction{Addr: pc, Len: len(code), Bytes: code, Text: badText}
	}
	inst, err := arm64asm.Decode(code[:4])
	if err != nil {
		return Instruction{Addr: pc, Len: 4, Bytes: code[:4], Text: badText}
	}
	text := arm64asm.GNUSyntax(inst)
	for _, a := range inst.Args {
		rel, ok := a.(arm64asm.PCRel)
		if !ok {
			continue
		}
		target := pc + uint64(int64(rel))
		if inst.Op == arm64asm.ADRP {
			target = pc&^0xfff + uint64(int64(rel))
		}
		text = strings.Replace(text, strings.ToLower(rel.String()), fmt.Sprintf("%#x", target), 1)
		if inst.Op != arm64asm.ADRP {
			if name, ok := symname(target); ok {
				text += " <" + name + ">"
			}
		}
	}
	return Instruction{Addr: pc, Len: 4, Bytes: code[:4], Text: text}
}

// maxSyncTries bounds how many start offsets DisasmStart tries on amd64.
const maxSyncTries = 64

// DisasmStart picks where to start decoding so that a listing shows up to n
// whole instructions before pc and then pc itself. code holds the bytes from
// addr (ideally the start of pc's function, from the symbolizer; else some
// bytes before pc) to at least pc. On arm64 it is simply n instructions back.
// On amd64, whose instructions vary in length, it decodes forward from the
// earliest offset whose instruction stream lands exactly on pc, without a
// "(bad)" on the way. It returns pc when no start works or pc lies outside
// code.
func DisasmStart(arch Arch, code []byte, addr, pc uint64, n int) uint64 {
	if pc < addr || pc-addr > uint64(len(code)) || n <= 0 {
		return pc
	}
	switch arch {
	case ArchARM64:
		back := min(uint64(n)*4, (pc-addr)&^3)
		return pc - back
	case ArchAMD64:
		span := int(pc - addr)
		for s, tries := 0, 0; s < span && tries < maxSyncTries; s, tries = s+1, tries+1 {
			var starts []uint64
			off := s
			for off < span {
				inst, err := x86asm.Decode(code[off:], 64)
				if err != nil || inst.Len == 0 || inst.Op == 0 {
					break
				}
				starts = append(starts, addr+uint64(off))
				off += inst.Len
			}
			if off == span {
				return starts[max(0, len(starts)-n)]
			}
		}
	}
	return pc
}

// maxBackBytes bounds how far before pc DisassembleAround reads when it
// decodes from the start of pc's function.
const maxBackBytes = 64 << 10

// DisassembleAround reads code through read (Target.ReadMemory fits) and
// returns up to before instructions ahead of pc, the instruction at pc, and
// up to after instructions following it. s, which may be nil, names branch
// targets; on amd64 it also gives the start of pc's function, the surest
// place to start decoding from. Without one it decodes from 64 bytes back and
// lets DisasmStart find the instruction stream that lands on pc.
func DisassembleAround(arch Arch, read func(addr uint64, p []byte) (int, error), s *Symbolizer, pc uint64, before, after int) ([]Instruction, error) {
	before, after = max(before, 0), max(after, 0)
	maxLen, back := 15, uint64(64)
	switch arch {
	case ArchARM64:
		maxLen, back = 4, uint64(4*before)
	case ArchAMD64:
		if s != nil {
			if loc := s.Lookup(pc); loc.Known() && loc.Offset <= maxBackBytes {
				back = loc.Offset
			}
		}
	default:
		return nil, fmt.Errorf("disassemble at %#x: no disassembler for %s", pc, arch)
	}
	back = min(back, pc)
	var symname func(uint64) (string, bool)
	if s != nil {
		symname = s.SymName
	}
	// The bytes before pc may be unmapped: fall back to the start of pc's
	// page, then to pc itself.
	var (
		code []byte
		n    int
		err  error
	)
	for _, b := range []uint64{back, min(back, pc&0xfff), 0} {
		code = make([]byte, b+uint64((after+1)*maxLen))
		if n, err = read(pc-b, code); n > int(b) {
			back = b
			break
		}
	}
	if n <= int(back) {
		if err == nil {
			err = ErrUnmapped
		}
		return nil, fmt.Errorf("disassemble at %#x: read memory: %w", pc, err)
	}
	start := pc - back
	code = code[:n]
	from := DisasmStart(arch, code[:back], start, pc, before)
	insts := Disassemble(arch, code[from-start:], from, symname)
	// Keep the instructions up to pc and after more.
	for i, in := range insts {
		if in.Addr >= pc {
			// The last instruction may be cut short by the end of code.
			end := min(i+after+1, len(insts))
			if end == len(insts) && end > i+1 && insts[end-1].Text == badText {
				end--
			}
			return insts[:end], nil
		}
	}
	return insts, nil
}
