package tracer

import "golang.org/x/sys/unix"

// Register blocks of Linux arm64, from <asm/ptrace.h>.
var (
	// user_pt_regs (NT_PRSTATUS): x0-x30, sp, pc, pstate.
	linuxGeneral = NewStructLayout(ArchARM64, FlavorGeneral, 34*8, append(seqFields("x", 29, 0, 8),
		Field{"fp", 29 * 8, 8}, Field{"lr", 30 * 8, 8}, Field{"sp", 31 * 8, 8},
		Field{"pc", 32 * 8, 8}, Field{"cpsr", 33 * 8, 8}))
	// user_fpsimd_state (NT_PRFPREG): v0-v31, fpsr, fpcr.
	linuxFloat = NewStructLayout(ArchARM64, FlavorFloat, 528, append(seqFields("v", 32, 0, 16),
		Field{"fpsr", 512, 4}, Field{"fpcr", 516, 4}))
)

const (
	linuxRegsetGeneral = unix.NT_PRSTATUS
	linuxRegsetFloat   = unix.NT_PRFPREG
)

// arm64 has no XSAVE; the float layout is already complete.
const xsaveYMMOffset = -1

var linuxAVXLayout *Layout

// Hardware debug registers on arm64 come from NT_ARM_HW_BREAK/WATCH, which
// machtrace does not read yet.
const linuxDebugOffset = -1

var linuxDebug *Layout

const localArch = ArchARM64
