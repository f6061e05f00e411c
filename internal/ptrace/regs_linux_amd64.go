package ptrace

import "encoding/binary"

// maybeInSyscall reports whether an NT_PRSTATUS block shows a thread stopped
// inside a system call: orig_rax (user_regs_struct word 15) is the call's
// number there and -1 otherwise.
func maybeInSyscall(prstatus []byte) bool {
	if len(prstatus) < 16*8 {
		return true
	}
	return int64(binary.LittleEndian.Uint64(prstatus[15*8:])) >= 0
}
