//go:build cgo

package mach

/*
#include <stddef.h>
#include <mach/mach.h>
#include <mach/thread_status.h>

enum {
	mt_off_x28 = offsetof(arm_thread_state64_t, __x[28]),
	mt_off_fp = offsetof(arm_thread_state64_t, __fp),
	mt_off_lr = offsetof(arm_thread_state64_t, __lr),
	mt_off_sp = offsetof(arm_thread_state64_t, __sp),
	mt_off_pc = offsetof(arm_thread_state64_t, __pc),
	mt_off_cpsr = offsetof(arm_thread_state64_t, __cpsr),
	mt_off_pad = offsetof(arm_thread_state64_t, __pad),
	mt_off_v31 = offsetof(arm_neon_state64_t, __v[31]),
	mt_off_fpsr = offsetof(arm_neon_state64_t, __fpsr),
	mt_off_fpcr = offsetof(arm_neon_state64_t, __fpcr),
	mt_off_bcr = offsetof(arm_debug_state64_t, __bcr),
	mt_off_wvr = offsetof(arm_debug_state64_t, __wvr),
	mt_off_wcr = offsetof(arm_debug_state64_t, __wcr),
	mt_off_mdscr = offsetof(arm_debug_state64_t, __mdscr_el1),
	mt_off_esr = offsetof(arm_exception_state64_t, __esr),
	mt_off_exception = offsetof(arm_exception_state64_t, __exception),
};
*/
import "C"

import "unsafe"

// Compile-time checks of the arm64 thread states against the SDK headers
// (see layout_darwin.go for how they work). An arm64 (not arm64e) build sees
// the non-opaque arm_thread_state64_t, the layout machtrace uses.
var (
	_ = [1]struct{}{}[int(C.ARM_THREAD_STATE64)-int(ARM_THREAD_STATE64)]
	_ = [1]struct{}{}[int(C.ARM_NEON_STATE64)-int(ARM_NEON_STATE64)]
	_ = [1]struct{}{}[int(C.ARM_EXCEPTION_STATE64)-int(ARM_EXCEPTION_STATE64)]
	_ = [1]struct{}{}[int(C.ARM_DEBUG_STATE64)-int(ARM_DEBUG_STATE64)]
	_ = [1]struct{}{}[int(C.ARM_THREAD_STATE)-int(ARM_THREAD_STATE)]
	_ = [1]struct{}{}[int(C.THREAD_STATE_NONE)-int(ARM_THREAD_STATE_NONE)]
	_ = [1]struct{}{}[int(C.ARM_THREAD_STATE_MAX)-ARM_THREAD_STATE_MAX]

	_ = [1]struct{}{}[int(C.ARM_THREAD_STATE64_COUNT)-ARM_THREAD_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.ARM_NEON_STATE64_COUNT)-ARM_NEON_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.ARM_EXCEPTION_STATE64_COUNT)-ARM_EXCEPTION_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.ARM_DEBUG_STATE64_COUNT)-ARM_DEBUG_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.ARM_UNIFIED_THREAD_STATE_COUNT)-ARM_UNIFIED_THREAD_STATE_COUNT]

	_ = [1]struct{}{}[int(C.sizeof_arm_thread_state64_t)-int(unsafe.Sizeof(ARMThreadState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_arm_neon_state64_t)-int(unsafe.Sizeof(ARMNeonState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_arm_debug_state64_t)-int(unsafe.Sizeof(ARMDebugState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_arm_exception_state64_t)-int(unsafe.Sizeof(ARMExceptionState64{}))]

	_ = [1]struct{}{}[int(C.mt_off_x28)-int(unsafe.Offsetof(ARMThreadState64{}.X)+28*8)]
	_ = [1]struct{}{}[int(C.mt_off_fp)-int(unsafe.Offsetof(ARMThreadState64{}.Fp))]
	_ = [1]struct{}{}[int(C.mt_off_lr)-int(unsafe.Offsetof(ARMThreadState64{}.Lr))]
	_ = [1]struct{}{}[int(C.mt_off_sp)-int(unsafe.Offsetof(ARMThreadState64{}.Sp))]
	_ = [1]struct{}{}[int(C.mt_off_pc)-int(unsafe.Offsetof(ARMThreadState64{}.Pc))]
	_ = [1]struct{}{}[int(C.mt_off_cpsr)-int(unsafe.Offsetof(ARMThreadState64{}.Cpsr))]
	_ = [1]struct{}{}[int(C.mt_off_pad)-int(unsafe.Offsetof(ARMThreadState64{}.Flags))]
	_ = [1]struct{}{}[int(C.mt_off_v31)-int(unsafe.Offsetof(ARMNeonState64{}.V)+31*16)]
	_ = [1]struct{}{}[int(C.mt_off_fpsr)-int(unsafe.Offsetof(ARMNeonState64{}.Fpsr))]
	_ = [1]struct{}{}[int(C.mt_off_fpcr)-int(unsafe.Offsetof(ARMNeonState64{}.Fpcr))]
	_ = [1]struct{}{}[int(C.mt_off_bcr)-int(unsafe.Offsetof(ARMDebugState64{}.Bcr))]
	_ = [1]struct{}{}[int(C.mt_off_wvr)-int(unsafe.Offsetof(ARMDebugState64{}.Wvr))]
	_ = [1]struct{}{}[int(C.mt_off_wcr)-int(unsafe.Offsetof(ARMDebugState64{}.Wcr))]
	_ = [1]struct{}{}[int(C.mt_off_mdscr)-int(unsafe.Offsetof(ARMDebugState64{}.MdscrEL1))]
	_ = [1]struct{}{}[int(C.mt_off_esr)-int(unsafe.Offsetof(ARMExceptionState64{}.Esr))]
	_ = [1]struct{}{}[int(C.mt_off_exception)-int(unsafe.Offsetof(ARMExceptionState64{}.Exception))]
)
