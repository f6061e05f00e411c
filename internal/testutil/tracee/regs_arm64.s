#include "textflag.h"

// func SpinWithKnownRegisters() uint64
//
// Loads the values of KnownRegisters, then spins until R12 becomes non-zero
// (a tracer writes it) and returns R12.
TEXT ·SpinWithKnownRegisters(SB), NOSPLIT, $0-8
	MOVD $0x1010101010101010, R0
	MOVD $0x1111111111111111, R1
	MOVD $0x2222222222222222, R2
	MOVD $0x3333333333333333, R3
	MOVD $0x4444444444444444, R4
	MOVD $0x5555555555555555, R5
	MOVD $0x6666666666666666, R6
	MOVD $0x7777777777777777, R7
	MOVD $0x0808080808080808, R8
	MOVD $0x0909090909090909, R9
	MOVD $0x0a0a0a0a0a0a0a0a, R10
	MOVD $0x0b0b0b0b0b0b0b0b, R11
	MOVD ZR, R12
	MOVD $0x0d0d0d0d0d0d0d0d, R13
	MOVD $0x0e0e0e0e0e0e0e0e, R14
	MOVD $0x0f0f0f0f0f0f0f0f, R15
spin:
	CBZ  R12, spin
	MOVD R12, ret+0(FP)
	RET
