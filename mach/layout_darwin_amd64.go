//go:build cgo

package mach

/*
#include <stddef.h>
#include <mach/mach.h>
#include <mach/thread_status.h>

enum {
	mt_off_rbp = offsetof(x86_thread_state64_t, __rbp),
	mt_off_r8 = offsetof(x86_thread_state64_t, __r8),
	mt_off_rip = offsetof(x86_thread_state64_t, __rip),
	mt_off_rflags = offsetof(x86_thread_state64_t, __rflags),
	mt_off_gs = offsetof(x86_thread_state64_t, __gs),
	mt_off_fcw = offsetof(x86_float_state64_t, __fpu_fcw),
	mt_off_ftw = offsetof(x86_float_state64_t, __fpu_ftw),
	mt_off_fop = offsetof(x86_float_state64_t, __fpu_fop),
	mt_off_fip = offsetof(x86_float_state64_t, __fpu_ip),
	mt_off_fdp = offsetof(x86_float_state64_t, __fpu_dp),
	mt_off_fds = offsetof(x86_float_state64_t, __fpu_ds),
	mt_off_mxcsr = offsetof(x86_float_state64_t, __fpu_mxcsr),
	mt_off_mxcsrmask = offsetof(x86_float_state64_t, __fpu_mxcsrmask),
	mt_off_stmm0 = offsetof(x86_float_state64_t, __fpu_stmm0),
	mt_off_xmm0 = offsetof(x86_float_state64_t, __fpu_xmm0),
	mt_off_xmm15 = offsetof(x86_float_state64_t, __fpu_xmm15),
	mt_off_reserved1 = offsetof(x86_float_state64_t, __fpu_reserved1),
	mt_off_avx_reserved1 = offsetof(x86_avx_state64_t, __avx_reserved1),
	mt_off_ymmh0 = offsetof(x86_avx_state64_t, __fpu_ymmh0),
	mt_off_k0 = offsetof(x86_avx512_state64_t, __fpu_k0),
	mt_off_zmmh0 = offsetof(x86_avx512_state64_t, __fpu_zmmh0),
	mt_off_zmm16 = offsetof(x86_avx512_state64_t, __fpu_zmm16),
	mt_off_dr7 = offsetof(x86_debug_state64_t, __dr7),
	mt_off_cpu = offsetof(x86_exception_state64_t, __cpu),
	mt_off_err = offsetof(x86_exception_state64_t, __err),
	mt_off_faultvaddr = offsetof(x86_exception_state64_t, __faultvaddr),
};
*/
import "C"

import "unsafe"

// Compile-time checks of the x86_64 thread states against the SDK headers
// (see layout_darwin.go for how they work).
var (
	_ = [1]struct{}{}[int(C.x86_THREAD_STATE64)-int(X86_THREAD_STATE64)]
	_ = [1]struct{}{}[int(C.x86_FLOAT_STATE64)-int(X86_FLOAT_STATE64)]
	_ = [1]struct{}{}[int(C.x86_EXCEPTION_STATE64)-int(X86_EXCEPTION_STATE64)]
	_ = [1]struct{}{}[int(C.x86_DEBUG_STATE64)-int(X86_DEBUG_STATE64)]
	_ = [1]struct{}{}[int(C.x86_AVX_STATE64)-int(X86_AVX_STATE64)]
	_ = [1]struct{}{}[int(C.x86_AVX512_STATE64)-int(X86_AVX512_STATE64)]
	_ = [1]struct{}{}[int(C.x86_THREAD_FULL_STATE64)-int(X86_THREAD_FULL_STATE64)]
	_ = [1]struct{}{}[int(C.THREAD_STATE_NONE)-int(X86_THREAD_STATE_NONE)]
	_ = [1]struct{}{}[int(C.I386_THREAD_STATE_MAX)-I386_THREAD_STATE_MAX]

	_ = [1]struct{}{}[int(C.x86_THREAD_STATE64_COUNT)-X86_THREAD_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.x86_FLOAT_STATE64_COUNT)-X86_FLOAT_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.x86_EXCEPTION_STATE64_COUNT)-X86_EXCEPTION_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.x86_DEBUG_STATE64_COUNT)-X86_DEBUG_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.x86_AVX_STATE64_COUNT)-X86_AVX_STATE64_COUNT]
	_ = [1]struct{}{}[int(C.x86_AVX512_STATE64_COUNT)-X86_AVX512_STATE64_COUNT]

	_ = [1]struct{}{}[int(C.sizeof_x86_thread_state64_t)-int(unsafe.Sizeof(X86ThreadState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_x86_float_state64_t)-int(unsafe.Sizeof(X86FloatState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_x86_avx_state64_t)-int(unsafe.Sizeof(X86AVXState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_x86_avx512_state64_t)-int(unsafe.Sizeof(X86AVX512State64{}))]
	_ = [1]struct{}{}[int(C.sizeof_x86_debug_state64_t)-int(unsafe.Sizeof(X86DebugState64{}))]
	_ = [1]struct{}{}[int(C.sizeof_x86_exception_state64_t)-int(unsafe.Sizeof(X86ExceptionState64{}))]

	_ = [1]struct{}{}[int(C.mt_off_rbp)-int(unsafe.Offsetof(X86ThreadState64{}.Rbp))]
	_ = [1]struct{}{}[int(C.mt_off_r8)-int(unsafe.Offsetof(X86ThreadState64{}.R8))]
	_ = [1]struct{}{}[int(C.mt_off_rip)-int(unsafe.Offsetof(X86ThreadState64{}.Rip))]
	_ = [1]struct{}{}[int(C.mt_off_rflags)-int(unsafe.Offsetof(X86ThreadState64{}.Rflags))]
	_ = [1]struct{}{}[int(C.mt_off_gs)-int(unsafe.Offsetof(X86ThreadState64{}.Gs))]
	_ = [1]struct{}{}[int(C.mt_off_fcw)-int(unsafe.Offsetof(X86FloatState64{}.Fcw))]
	_ = [1]struct{}{}[int(C.mt_off_ftw)-int(unsafe.Offsetof(X86FloatState64{}.Ftw))]
	_ = [1]struct{}{}[int(C.mt_off_fop)-int(unsafe.Offsetof(X86FloatState64{}.Fop))]
	_ = [1]struct{}{}[int(C.mt_off_fip)-int(unsafe.Offsetof(X86FloatState64{}.IP))]
	_ = [1]struct{}{}[int(C.mt_off_fdp)-int(unsafe.Offsetof(X86FloatState64{}.DP))]
	_ = [1]struct{}{}[int(C.mt_off_fds)-int(unsafe.Offsetof(X86FloatState64{}.DS))]
	_ = [1]struct{}{}[int(C.mt_off_mxcsr)-int(unsafe.Offsetof(X86FloatState64{}.Mxcsr))]
	_ = [1]struct{}{}[int(C.mt_off_mxcsrmask)-int(unsafe.Offsetof(X86FloatState64{}.MxcsrMask))]
	_ = [1]struct{}{}[int(C.mt_off_stmm0)-int(unsafe.Offsetof(X86FloatState64{}.Stmm))]
	_ = [1]struct{}{}[int(C.mt_off_xmm0)-int(unsafe.Offsetof(X86FloatState64{}.Xmm))]
	_ = [1]struct{}{}[int(C.mt_off_xmm15)-int(unsafe.Offsetof(X86FloatState64{}.Xmm)+15*16)]
	_ = [1]struct{}{}[int(C.mt_off_reserved1)-int(unsafe.Offsetof(X86FloatState64{}.Reserved1))]
	_ = [1]struct{}{}[int(C.mt_off_avx_reserved1)-int(unsafe.Offsetof(X86AVXState64{}.AVXReserved1))]
	_ = [1]struct{}{}[int(C.mt_off_ymmh0)-int(unsafe.Offsetof(X86AVXState64{}.Ymmh))]
	_ = [1]struct{}{}[int(C.mt_off_k0)-int(unsafe.Offsetof(X86AVX512State64{}.K))]
	_ = [1]struct{}{}[int(C.mt_off_zmmh0)-int(unsafe.Offsetof(X86AVX512State64{}.Zmmh))]
	_ = [1]struct{}{}[int(C.mt_off_zmm16)-int(unsafe.Offsetof(X86AVX512State64{}.Zmm))]
	_ = [1]struct{}{}[int(C.mt_off_dr7)-int(unsafe.Offsetof(X86DebugState64{}.Dr)+7*8)]
	_ = [1]struct{}{}[int(C.mt_off_cpu)-int(unsafe.Offsetof(X86ExceptionState64{}.CPU))]
	_ = [1]struct{}{}[int(C.mt_off_err)-int(unsafe.Offsetof(X86ExceptionState64{}.Err))]
	_ = [1]struct{}{}[int(C.mt_off_faultvaddr)-int(unsafe.Offsetof(X86ExceptionState64{}.Faultvaddr))]
)
