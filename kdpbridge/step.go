package kdpbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/machtrace/machtrace/tracer"
)

// emulateStep single-steps the current thread without a trace trap, for
// backends whose breakpoints are self-jumps: it decodes the instruction at
// the PC, plants temporary self-jump breakpoints on every instruction that
// can follow it (the next one, a branch target, a return address), and lets
// the watcher find the thread spinning on one of them. Other threads that
// reach a temporary breakpoint spin there until it is removed, then go on.
func (s *Server) emulateStep() error {
	if s.arch != tracer.ArchAMD64 {
		return fmt.Errorf("%w on %s", errors.ErrUnsupported, s.arch)
	}
	regs, err := s.t.ThreadState(s.current, tracer.FlavorGeneral)
	if err != nil {
		return err
	}
	pc := regs.PC()
	code := make([]byte, 16)
	n, _ := s.t.ReadMemory(pc, code)
	s.hideBreakpoints(pc, code[:n])
	next, err := x86Successors(code[:n], pc, regs, s.readU64)
	if err != nil {
		return err
	}
	st := &stepState{tid: s.current, fromPC: pc, at: map[uint64]bool{}}
	for _, a := range next {
		st.at[a] = true
		if _, ok := s.bps[a]; ok {
			continue // a real breakpoint already stops the thread there
		}
		if _, ok := s.tempBps[a]; ok {
			continue
		}
		orig := make([]byte, len(s.trapInsn))
		if m, err := s.t.ReadMemory(a, orig); err != nil || m < len(orig) {
			continue // unreadable successor: the thread faults there instead
		}
		if m, err := s.t.WriteMemory(a, s.trapInsn); err != nil || m < len(s.trapInsn) {
			continue
		}
		s.tempBps[a] = orig
	}
	s.step = st
	s.opts.Logf("kdp server: stepping thread %d from %#x to one of %#x", s.current, pc, next)
	return nil
}

// readU64 reads a little-endian word of target memory, breakpoints hidden.
func (s *Server) readU64(addr uint64) (uint64, error) {
	var b [8]byte
	n, err := s.t.ReadMemory(addr, b[:])
	if err != nil || n < 8 {
		return 0, fmt.Errorf("read %#x: %w", addr, tracer.ErrUnmapped)
	}
	s.hideBreakpoints(addr, b[:])
	return binary.LittleEndian.Uint64(b[:]), nil
}

// x86Successors returns the addresses execution can reach after the
// instruction at pc: the next instruction, and for control transfers their
// target (relative, through a register, through memory, or the return
// address on the stack).
func x86Successors(code []byte, pc uint64, regs *tracer.Registers, read func(uint64) (uint64, error)) ([]uint64, error) {
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return nil, fmt.Errorf("decode at %#x: %w", pc, err)
	}
	next := pc + uint64(inst.Len)
	reg := func(r x86asm.Reg) (uint64, error) {
		if r == x86asm.RIP {
			return next, nil
		}
		v, ok := regs.Get(strings.ToLower(r.String()))
		if !ok {
			return 0, fmt.Errorf("register %v not available", r)
		}
		return v, nil
	}
	target := func(a x86asm.Arg) (uint64, error) {
		switch a := a.(type) {
		case x86asm.Rel:
			return next + uint64(int64(a)), nil
		case x86asm.Reg:
			return reg(a)
		case x86asm.Mem:
			if a.Segment != 0 {
				return 0, fmt.Errorf("segment-relative branch at %#x", pc)
			}
			var ea uint64
			if a.Base != 0 {
				v, err := reg(a.Base)
				if err != nil {
					return 0, err
				}
				ea += v
			}
			if a.Index != 0 {
				v, err := reg(a.Index)
				if err != nil {
					return 0, err
				}
				ea += v * uint64(a.Scale)
			}
			ea += uint64(a.Disp)
			return read(ea)
		}
		return 0, fmt.Errorf("branch operand %v at %#x", a, pc)
	}
	switch inst.Op {
	case x86asm.JMP:
		t, err := target(inst.Args[0])
		return []uint64{t}, err
	case x86asm.CALL:
		t, err := target(inst.Args[0])
		return []uint64{t}, err
	case x86asm.RET:
		sp, err := reg(x86asm.RSP)
		if err != nil {
			return nil, err
		}
		t, err := read(sp)
		return []uint64{t}, err
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
		x86asm.JP, x86asm.JS, x86asm.JRCXZ, x86asm.JECXZ, x86asm.JCXZ,
		x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		t, err := target(inst.Args[0])
		if err != nil {
			return nil, err
		}
		if t == next {
			return []uint64{next}, nil
		}
		return []uint64{next, t}, nil
	case x86asm.IRET, x86asm.IRETD, x86asm.IRETQ, x86asm.LRET, x86asm.SYSRET, x86asm.SYSEXIT:
		return nil, fmt.Errorf("cannot step %v at %#x", inst.Op, pc)
	}
	return []uint64{next}, nil
}
