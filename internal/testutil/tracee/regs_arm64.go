package tracee

// KnownRegisters are the values SpinWithKnownRegisters loads, by register
// name as machtrace displays them.
var KnownRegisters = map[string]uint64{
	"x0": 0x1010101010101010, "x1": 0x1111111111111111, "x2": 0x2222222222222222,
	"x3": 0x3333333333333333, "x4": 0x4444444444444444, "x5": 0x5555555555555555,
	"x6": 0x6666666666666666, "x7": 0x7777777777777777, "x8": 0x0808080808080808,
	"x9": 0x0909090909090909, "x10": 0x0a0a0a0a0a0a0a0a, "x11": 0x0b0b0b0b0b0b0b0b,
	"x12": 0, "x13": 0x0d0d0d0d0d0d0d0d, "x14": 0x0e0e0e0e0e0e0e0e, "x15": 0x0f0f0f0f0f0f0f0f,
}

// ControlRegister ends SpinWithKnownRegisters when set non-zero; the program
// then exits with its value.
const ControlRegister = "x12"

// SpinWithKnownRegisters is implemented in assembly.
func SpinWithKnownRegisters() uint64
