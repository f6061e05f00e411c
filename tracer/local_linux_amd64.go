package tracer

import "golang.org/x/sys/unix"

// Register blocks of Linux x86_64, from <sys/user.h>.
var (
	// user_regs_struct (NT_PRSTATUS), 27 u64.
	linuxGeneral = NewStructLayout(ArchAMD64, FlavorGeneral, 27*8, []Field{
		{"rax", 10 * 8, 8}, {"rbx", 5 * 8, 8}, {"rcx", 11 * 8, 8}, {"rdx", 12 * 8, 8},
		{"rsi", 13 * 8, 8}, {"rdi", 14 * 8, 8}, {"rbp", 4 * 8, 8}, {"rsp", 19 * 8, 8},
		{"r8", 9 * 8, 8}, {"r9", 8 * 8, 8}, {"r10", 7 * 8, 8}, {"r11", 6 * 8, 8},
		{"r12", 3 * 8, 8}, {"r13", 2 * 8, 8}, {"r14", 1 * 8, 8}, {"r15", 0, 8},
		{"rip", 16 * 8, 8}, {"rflags", 18 * 8, 8},
		{"cs", 17 * 8, 8}, {"ss", 20 * 8, 8}, {"ds", 23 * 8, 8}, {"es", 24 * 8, 8},
		{"fs", 25 * 8, 8}, {"gs", 26 * 8, 8},
		{"fs_base", 21 * 8, 8}, {"gs_base", 22 * 8, 8}, {"orig_rax", 15 * 8, 8},
	})
	// user_fpregs_struct (NT_PRFPREG): the 512-byte FXSAVE image.
	linuxFloat = NewStructLayout(ArchAMD64, FlavorFloat, 512, append(append([]Field{
		{"fcw", 0, 2}, {"fsw", 2, 2}, {"ftw", 4, 2}, {"fop", 6, 2},
		{"fip", 8, 8}, {"fdp", 16, 8}, {"mxcsr", 24, 4}, {"mxcsr_mask", 28, 4},
	}, x87Fields()...), seqFields("xmm", 16, 160, 16)...))
)

// linuxRegsetGeneral and linuxRegsetFloat are the regset notes per flavor.
const (
	linuxRegsetGeneral = unix.NT_PRSTATUS
	linuxRegsetFloat   = unix.NT_PRFPREG
)

// xsaveYMMOffset is where the upper halves of YMM0-15 live in the standard
// XSAVE layout (component 2, AVX); XSTATE_BV at 512 says whether it is valid.
const xsaveYMMOffset = 576

// linuxAVXLayout adds the full YMM registers to the float state.
var linuxAVXLayout = func() *Layout {
	descs := append([]RegDesc(nil), linuxFloat.Layout.descs...)
	for i := 0; i < 16; i++ {
		descs = append(descs, RegDesc{Name: "ymm" + itoa(i), Size: 32})
	}
	return NewLayout(ArchAMD64, FlavorFloat, descs)
}()

// linuxDebugOffset is offsetof(struct user, u_debugreg) on x86_64.
const linuxDebugOffset = 848

var linuxDebug = NewLayout(ArchAMD64, FlavorDebug, []RegDesc{
	{"dr0", 8}, {"dr1", 8}, {"dr2", 8}, {"dr3", 8}, {"dr4", 8}, {"dr5", 8}, {"dr6", 8}, {"dr7", 8},
})

const localArch = ArchAMD64

// x87Fields are st0-st7: 10-byte registers in 16-byte FXSAVE slots.
func x87Fields() []Field {
	f := seqFields("st", 8, 32, 16)
	for i := range f {
		f[i].Size = 10
	}
	return f
}
