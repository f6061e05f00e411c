package mach

// StateFlavor is a thread_state_flavor_t. Flavor numbers are per
// architecture: 6 is x86_EXCEPTION_STATE64 on x86_64 and ARM_THREAD_STATE64 on
// arm64.
type StateFlavor int32

// x86_64 thread-state flavors (mach/i386/thread_status.h). Names keep the C
// spelling, with the leading "x86" capitalised so that they are exported.
const (
	X86_THREAD_STATE32      StateFlavor = 1
	X86_FLOAT_STATE32       StateFlavor = 2
	X86_EXCEPTION_STATE32   StateFlavor = 3
	X86_THREAD_STATE64      StateFlavor = 4
	X86_FLOAT_STATE64       StateFlavor = 5
	X86_EXCEPTION_STATE64   StateFlavor = 6
	X86_THREAD_STATE        StateFlavor = 7
	X86_FLOAT_STATE         StateFlavor = 8
	X86_EXCEPTION_STATE     StateFlavor = 9
	X86_DEBUG_STATE32       StateFlavor = 10
	X86_DEBUG_STATE64       StateFlavor = 11
	X86_DEBUG_STATE         StateFlavor = 12
	X86_THREAD_STATE_NONE   StateFlavor = 13 // THREAD_STATE_NONE on x86_64
	X86_AVX_STATE32         StateFlavor = 16
	X86_AVX_STATE64         StateFlavor = 17
	X86_AVX_STATE           StateFlavor = 18
	X86_AVX512_STATE32      StateFlavor = 19
	X86_AVX512_STATE64      StateFlavor = 20
	X86_AVX512_STATE        StateFlavor = 21
	X86_PAGEIN_STATE        StateFlavor = 22
	X86_THREAD_FULL_STATE64 StateFlavor = 23
	I386_THREAD_STATE_MAX               = 614 // the largest x86 state, in words
)

// arm64 thread-state flavors (mach/arm/thread_status.h).
const (
	ARM_THREAD_STATE      StateFlavor = 1
	ARM_VFP_STATE         StateFlavor = 2
	ARM_EXCEPTION_STATE   StateFlavor = 3
	ARM_DEBUG_STATE       StateFlavor = 4
	ARM_THREAD_STATE_NONE StateFlavor = 5 // THREAD_STATE_NONE on arm64
	ARM_THREAD_STATE64    StateFlavor = 6
	ARM_EXCEPTION_STATE64 StateFlavor = 7
	ARM_THREAD_STATE32    StateFlavor = 9
	ARM_DEBUG_STATE32     StateFlavor = 14
	ARM_DEBUG_STATE64     StateFlavor = 15
	ARM_NEON_STATE        StateFlavor = 16
	ARM_NEON_STATE64      StateFlavor = 17
	ARM_PAGEIN_STATE      StateFlavor = 27
	ARM_THREAD_STATE_MAX              = 1296 // the largest arm state, in words
)

// THREAD_STATE_MAX is the size in words of the largest thread state any
// flavor may return: 1296 on both architectures in the macOS 12 and later
// SDKs (mach/machine/thread_state.h), so buffers sized by it fit either.
const THREAD_STATE_MAX = 1296

// COUNT values: the size of each state in 32-bit words (mach_msg_type_number_t).
const (
	X86_THREAD_STATE64_COUNT      = 42
	X86_FLOAT_STATE64_COUNT       = 131
	X86_EXCEPTION_STATE64_COUNT   = 4
	X86_DEBUG_STATE64_COUNT       = 16
	X86_AVX_STATE64_COUNT         = 211
	X86_AVX512_STATE64_COUNT      = 611
	X86_THREAD_FULL_STATE64_COUNT = 50

	ARM_UNIFIED_THREAD_STATE_COUNT = 70 // ARM_THREAD_STATE with arm_unified_thread_state
	ARM_THREAD_STATE64_COUNT       = 68
	ARM_NEON_STATE64_COUNT         = 132
	ARM_EXCEPTION_STATE64_COUNT    = 4
	ARM_DEBUG_STATE64_COUNT        = 130
)

// ThreadInfoFlavor is a thread_flavor_t for thread_info.
type ThreadInfoFlavor int32

// thread_info flavors and their COUNT values (mach/thread_info.h); the same on
// both architectures.
const (
	THREAD_BASIC_INFO      ThreadInfoFlavor = 3
	THREAD_IDENTIFIER_INFO ThreadInfoFlavor = 4
	THREAD_EXTENDED_INFO   ThreadInfoFlavor = 5

	THREAD_BASIC_INFO_COUNT      = 10
	THREAD_IDENTIFIER_INFO_COUNT = 6
	THREAD_EXTENDED_INFO_COUNT   = 28
)

// Thread run states (thread_basic_info.run_state, thread_extended_info.pth_run_state).
const (
	TH_STATE_RUNNING         = 1
	TH_STATE_STOPPED         = 2
	TH_STATE_WAITING         = 3
	TH_STATE_UNINTERRUPTIBLE = 4
	TH_STATE_HALTED          = 5
)

// Thread flags (thread_basic_info.flags).
const (
	TH_FLAGS_SWAPPED = 0x1
	TH_FLAGS_IDLE    = 0x2
)

// task_info flavors used by machtrace (mach/task_info.h).
const (
	TASK_DYLD_INFO       = 17
	TASK_DYLD_INFO_COUNT = 5 // words; 4 gives the legacy form without the format field

	TASK_DYLD_ALL_IMAGE_INFO_32 = 0
	TASK_DYLD_ALL_IMAGE_INFO_64 = 1
)

// VMProt is a vm_prot_t.
type VMProt int32

// Memory protections (mach/vm_prot.h).
const (
	VM_PROT_NONE    VMProt = 0
	VM_PROT_READ    VMProt = 1
	VM_PROT_WRITE   VMProt = 2
	VM_PROT_EXECUTE VMProt = 4
	VM_PROT_COPY    VMProt = 0x10
)

// String returns "rwx"-style text ("r-x").
func (p VMProt) String() string {
	b := []byte("---")
	if p&VM_PROT_READ != 0 {
		b[0] = 'r'
	}
	if p&VM_PROT_WRITE != 0 {
		b[1] = 'w'
	}
	if p&VM_PROT_EXECUTE != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// Region flavors and counts (mach/vm_region.h).
const (
	VM_REGION_BASIC_INFO_64        = 9
	VM_REGION_BASIC_INFO_COUNT_64  = 9
	VM_REGION_SUBMAP_INFO_COUNT_64 = 19
)

// posix_spawn flags (spawn.h; the underscore ones are private).
const (
	POSIX_SPAWN_SETPGROUP       = 0x0002
	POSIX_SPAWN_SETEXEC         = 0x0040
	POSIX_SPAWN_START_SUSPENDED = 0x0080
	POSIX_SPAWN_DISABLE_ASLR    = 0x0100 // _POSIX_SPAWN_DISABLE_ASLR
	POSIX_SPAWN_CLOEXEC_DEFAULT = 0x4000
)
