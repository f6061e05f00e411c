#include "textflag.h"

// func SpinWithKnownRegisters() uint64
//
// Loads the values of KnownRegisters, then spins until R12 becomes non-zero
// (a tracer writes it) and returns R12.
TEXT ·SpinWithKnownRegisters(SB), NOSPLIT, $0-8
	MOVQ $0x1111111111111111, AX
	MOVQ $0x2222222222222222, BX
	MOVQ $0x3333333333333333, CX
	MOVQ $0x4444444444444444, DX
	MOVQ $0x5555555555555555, SI
	MOVQ $0x6666666666666666, DI
	MOVQ $0x0808080808080808, R8
	MOVQ $0x0909090909090909, R9
	MOVQ $0x0a0a0a0a0a0a0a0a, R10
	MOVQ $0x0b0b0b0b0b0b0b0b, R11
	XORQ R12, R12
	MOVQ $0x0d0d0d0d0d0d0d0d, R13
	MOVQ $0x0e0e0e0e0e0e0e0e, R14
	MOVQ $0x0f0f0f0f0f0f0f0f, R15
spin:
	TESTQ R12, R12
	JEQ   spin
	MOVQ  R12, ret+0(FP)
	RET
