package kdp

// CPU types (Mach-O cpu_type_t) a HOSTINFO reply carries, and that select the
// register flavors below.
const (
	CPUTypeX86    uint32 = 7
	CPUTypeX86_64 uint32 = 0x01000007 // CPU_TYPE_X86 | CPU_ARCH_ABI64
	CPUTypeARM    uint32 = 12
	CPUTypeARM64  uint32 = 0x0100000C // CPU_TYPE_ARM | CPU_ARCH_ABI64
)

// Thread-state flavors (thread_state_flavor_t) carried by READREGS and
// WRITEREGS. The numbers overlap between architectures (4 is
// x86_THREAD_STATE64 but ARM_DEBUG_STATE), so a flavor means something only
// together with the HOSTINFO CPU type.
const (
	X86ThreadState64    uint32 = 4  // x86_THREAD_STATE64: rax..gs, 21 × u64; LLDB's GPR set
	X86FloatState64     uint32 = 5  // x86_FLOAT_STATE64: FXSAVE image (zeros from XNU); LLDB's FPU set
	X86ExceptionState64 uint32 = 6  // x86_EXCEPTION_STATE64: trapno, err, faultvaddr; LLDB's EXC set (XNU: BADFLAVOR)
	X86DebugState64     uint32 = 11 // x86_DEBUG_STATE64: dr0..dr7

	ARMVFPState         uint32 = 2  // ARM_VFP_STATE: 64 × u32 + fpscr (zeros from XNU)
	ARMThreadState64    uint32 = 6  // ARM_THREAD_STATE64: x0..x28, fp, lr, sp, pc, cpsr, pad
	ARMExceptionState64 uint32 = 7  // ARM_EXCEPTION_STATE64: far, esr, exception
	ARMDebugState64     uint32 = 15 // ARM_DEBUG_STATE64: bvr, bcr, wvr, wcr, mdscr_el1
	ARMNeonState64      uint32 = 17 // ARM_NEON_STATE64: v0..v31, fpsr, fpcr
)

// Sizes in bytes of the thread-state images, as XNU and LLDB lay them out.
const (
	X86ThreadState64Size    = 168
	X86FloatState64Size     = 524
	X86ExceptionState64Size = 16
	X86DebugState64Size     = 64

	ARMVFPStateSize         = 260
	ARMThreadState64Size    = 272
	ARMExceptionState64Size = 16
	ARMDebugState64Size     = 520
	ARMNeonState64Size      = 528
)

// FlavorSize returns the size of the thread-state image of flavor for a
// target of the given CPU type, and false when the pair is not one KDP peers
// use.
func FlavorSize(cpuType, flavor uint32) (int, bool) {
	switch cpuType {
	case CPUTypeX86_64:
		switch flavor {
		case X86ThreadState64:
			return X86ThreadState64Size, true
		case X86FloatState64:
			return X86FloatState64Size, true
		case X86ExceptionState64:
			return X86ExceptionState64Size, true
		case X86DebugState64:
			return X86DebugState64Size, true
		}
	case CPUTypeARM64:
		switch flavor {
		case ARMVFPState:
			return ARMVFPStateSize, true
		case ARMThreadState64:
			return ARMThreadState64Size, true
		case ARMExceptionState64:
			return ARMExceptionState64Size, true
		case ARMDebugState64:
			return ARMDebugState64Size, true
		case ARMNeonState64:
			return ARMNeonState64Size, true
		}
	}
	return 0, false
}

// GeneralFlavor returns the flavor of the general-purpose register set for a
// CPU type (4 on x86_64, 6 on arm64), and false for other CPU types.
func GeneralFlavor(cpuType uint32) (uint32, bool) {
	switch cpuType {
	case CPUTypeX86_64:
		return X86ThreadState64, true
	case CPUTypeARM64:
		return ARMThreadState64, true
	}
	return 0, false
}

// Limits of the protocol.
const (
	// Port is the UDP port a KDP stub listens on (KDP_REMOTE_PORT).
	Port = 41139
	// HeaderLen is the size of the common header.
	HeaderLen = 8
	// MaxData is the most data bytes one memory request may carry
	// (MAX_KDP_DATA_SIZE); a stub answers more with ErrBadNBytes.
	MaxData = 1024
	// MaxDatagram is the largest datagram XNU's stub can send or receive
	// without IP fragmentation (1500-byte MTU less IPv4 and UDP headers).
	MaxDatagram = 1472
	// ProtocolVersion is the version XNU's stub reports in a VERSION reply.
	ProtocolVersion = 12
	// FeatureBreakpoints is the VERSION feature bit meaning the stub manages
	// breakpoints (KDP_FEATURE_BP).
	FeatureBreakpoints = 1
	// CurrentLCPU is the lcpu value meaning "the CPU the stub runs on" in
	// physical-memory, I/O port and MSR requests (KDP_CURRENT_LCPU).
	CurrentLCPU = 0xFFFE
)
