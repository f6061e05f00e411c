package tracee

// KnownRegisters are the values SpinWithKnownRegisters loads, by register
// name as machtrace displays them.
var KnownRegisters = map[string]uint64{
	"rax": 0x1111111111111111, "rbx": 0x2222222222222222, "rcx": 0x3333333333333333,
	"rdx": 0x4444444444444444, "rsi": 0x5555555555555555, "rdi": 0x6666666666666666,
	"r8": 0x0808080808080808, "r9": 0x0909090909090909, "r10": 0x0a0a0a0a0a0a0a0a,
	"r11": 0x0b0b0b0b0b0b0b0b, "r12": 0, "r13": 0x0d0d0d0d0d0d0d0d,
	"r14": 0x0e0e0e0e0e0e0e0e, "r15": 0x0f0f0f0f0f0f0f0f,
}

// ControlRegister ends SpinWithKnownRegisters when set non-zero; the program
// then exits with its value.
const ControlRegister = "r12"

// SpinWithKnownRegisters is implemented in assembly.
func SpinWithKnownRegisters() uint64
