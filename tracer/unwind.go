package tracer

import "encoding/binary"

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// FrameReader reads a frame record at addr: the saved frame pointer and the
// return address stored after it (16 bytes on amd64 and arm64).
type FrameReader func(addr uint64) (savedFP, ret uint64, ok bool)

// maxFrameSize bounds the distance between two frame records; a larger jump
// means the chain is broken (or a frame pointer register holds data).
const maxFrameSize = 64 << 20

// UnwindFramePointers walks the frame-pointer chain from regs and returns the
// PC followed by return addresses, innermost first, at most maxDepth entries.
//
// On amd64 and arm64 a frame record is [saved FP, return address] at FP. The
// walk stops when FP is zero, misaligned, not above the previous record (the
// stack grows down), implausibly far from it, or unreadable. strip, when not
// nil, removes pointer-authentication bits from return addresses.
//
// On arm64 a leaf function that has not saved LR has no frame record of its
// own: the first record is its caller's, so the caller is missing from the
// stack (the PC itself is still right). Without unwind tables that cannot be
// told apart from a non-leaf function, whose LR register holds a stale value.
func UnwindFramePointers(regs *Registers, read FrameReader, maxDepth int, strip func(uint64) uint64) []uint64 {
	if strip == nil {
		strip = func(a uint64) uint64 { return a }
	}
	pc := strip(regs.PC())
	stack := make([]uint64, 1, 16)
	stack[0] = pc
	fp := strip(regs.FP())
	sp := regs.SP()
	for len(stack) < maxDepth && fp != 0 {
		if fp%8 != 0 || fp < sp {
			break
		}
		savedFP, ret, ok := read(fp)
		if !ok {
			break
		}
		ret = strip(ret)
		if ret == 0 {
			break
		}
		stack = append(stack, ret)
		savedFP = strip(savedFP)
		if savedFP <= fp || savedFP-fp > maxFrameSize {
			break
		}
		sp, fp = fp, savedFP
	}
	if len(stack) > maxDepth {
		stack = stack[:maxDepth]
	}
	return stack
}
