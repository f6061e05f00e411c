//go:build cgo

package mach

/*
#include <stddef.h>
#include <spawn.h>
#include <mach/mach.h>
#include <mach/thread_info.h>
#include <mach/task_info.h>
#include <mach/vm_region.h>

enum {
	mt_off_tbi_suspend_count = offsetof(struct thread_basic_info, suspend_count),
	mt_off_tbi_sleep_time = offsetof(struct thread_basic_info, sleep_time),
	mt_off_tii_dispatch_qaddr = offsetof(struct thread_identifier_info, dispatch_qaddr),
	mt_off_tei_pth_name = offsetof(struct thread_extended_info, pth_name),
	mt_off_tei_pth_maxpriority = offsetof(struct thread_extended_info, pth_maxpriority),
	mt_off_vrbi_offset = offsetof(struct vm_region_basic_info_64, offset),
	mt_off_vrbi_user_wired_count = offsetof(struct vm_region_basic_info_64, user_wired_count),
	mt_off_vrsi_user_tag = offsetof(struct vm_region_submap_info_64, user_tag),
	mt_off_vrsi_ref_count = offsetof(struct vm_region_submap_info_64, ref_count),
	mt_off_vrsi_is_submap = offsetof(struct vm_region_submap_info_64, is_submap),
	mt_off_vrsi_object_id = offsetof(struct vm_region_submap_info_64, object_id),
	mt_off_tdi_format = offsetof(struct task_dyld_info, all_image_info_format),
};
*/
import "C"

import "unsafe"

// Compile-time checks of the portable types against the SDK headers the
// cgo build uses (zig's macOS headers in CI, Xcode's on a Mac). Each line
// indexes a one-element array with (header value - Go value): any mismatch
// is a constant index out of range, and the darwin build fails right here.
// Per-architecture state layouts are checked in layout_darwin_{amd64,arm64}.go.

// thread_info structures and flavors.
var (
	_ = [1]struct{}{}[int(C.sizeof_thread_basic_info_data_t)-int(unsafe.Sizeof(ThreadBasicInfo{}))]
	_ = [1]struct{}{}[int(C.THREAD_BASIC_INFO_COUNT)-THREAD_BASIC_INFO_COUNT]
	_ = [1]struct{}{}[int(C.THREAD_BASIC_INFO)-int(THREAD_BASIC_INFO)]
	_ = [1]struct{}{}[int(C.mt_off_tbi_suspend_count)-int(unsafe.Offsetof(ThreadBasicInfo{}.SuspendCount))]
	_ = [1]struct{}{}[int(C.mt_off_tbi_sleep_time)-int(unsafe.Offsetof(ThreadBasicInfo{}.SleepTime))]

	_ = [1]struct{}{}[int(C.sizeof_thread_identifier_info_data_t)-int(unsafe.Sizeof(ThreadIdentifierInfo{}))]
	_ = [1]struct{}{}[int(C.THREAD_IDENTIFIER_INFO_COUNT)-THREAD_IDENTIFIER_INFO_COUNT]
	_ = [1]struct{}{}[int(C.THREAD_IDENTIFIER_INFO)-int(THREAD_IDENTIFIER_INFO)]
	_ = [1]struct{}{}[int(C.mt_off_tii_dispatch_qaddr)-int(unsafe.Offsetof(ThreadIdentifierInfo{}.DispatchQaddr))]

	_ = [1]struct{}{}[int(C.sizeof_thread_extended_info_data_t)-int(unsafe.Sizeof(ThreadExtendedInfo{}))]
	_ = [1]struct{}{}[int(C.THREAD_EXTENDED_INFO_COUNT)-THREAD_EXTENDED_INFO_COUNT]
	_ = [1]struct{}{}[int(C.THREAD_EXTENDED_INFO)-int(THREAD_EXTENDED_INFO)]
	_ = [1]struct{}{}[int(C.mt_off_tei_pth_name)-int(unsafe.Offsetof(ThreadExtendedInfo{}.RawName))]
	_ = [1]struct{}{}[int(C.mt_off_tei_pth_maxpriority)-int(unsafe.Offsetof(ThreadExtendedInfo{}.MaxPriority))]

	_ = [1]struct{}{}[int(C.THREAD_STATE_MAX)-THREAD_STATE_MAX]

	_ = [1]struct{}{}[int(C.TH_STATE_RUNNING)-TH_STATE_RUNNING]
	_ = [1]struct{}{}[int(C.TH_STATE_HALTED)-TH_STATE_HALTED]
)

// task_info(TASK_DYLD_INFO), regions, protections, spawn flags.
var (
	_ = [1]struct{}{}[int(C.TASK_DYLD_INFO)-TASK_DYLD_INFO]
	_ = [1]struct{}{}[int(C.TASK_DYLD_INFO_COUNT)-TASK_DYLD_INFO_COUNT]
	_ = [1]struct{}{}[int(C.sizeof_task_dyld_info_data_t)-20]
	_ = [1]struct{}{}[int(C.mt_off_tdi_format)-16]
	_ = [1]struct{}{}[int(C.TASK_DYLD_ALL_IMAGE_INFO_64)-TASK_DYLD_ALL_IMAGE_INFO_64]

	_ = [1]struct{}{}[int(C.VM_REGION_BASIC_INFO_64)-VM_REGION_BASIC_INFO_64]
	_ = [1]struct{}{}[int(C.VM_REGION_BASIC_INFO_COUNT_64)-VM_REGION_BASIC_INFO_COUNT_64]
	_ = [1]struct{}{}[int(C.sizeof_vm_region_basic_info_data_64_t)-VM_REGION_BASIC_INFO_COUNT_64*4]
	_ = [1]struct{}{}[int(C.mt_off_vrbi_offset)-20]
	_ = [1]struct{}{}[int(C.mt_off_vrbi_user_wired_count)-32]
	_ = [1]struct{}{}[int(C.VM_REGION_SUBMAP_INFO_COUNT_64)-VM_REGION_SUBMAP_INFO_COUNT_64]
	_ = [1]struct{}{}[int(C.sizeof_vm_region_submap_info_data_64_t)-VM_REGION_SUBMAP_INFO_COUNT_64*4]
	_ = [1]struct{}{}[int(C.mt_off_vrsi_user_tag)-20]
	_ = [1]struct{}{}[int(C.mt_off_vrsi_ref_count)-40]
	_ = [1]struct{}{}[int(C.mt_off_vrsi_is_submap)-48]
	_ = [1]struct{}{}[int(C.mt_off_vrsi_object_id)-56]

	_ = [1]struct{}{}[int(C.VM_PROT_READ)-int(VM_PROT_READ)]
	_ = [1]struct{}{}[int(C.VM_PROT_WRITE)-int(VM_PROT_WRITE)]
	_ = [1]struct{}{}[int(C.VM_PROT_EXECUTE)-int(VM_PROT_EXECUTE)]
	_ = [1]struct{}{}[int(C.VM_PROT_COPY)-int(VM_PROT_COPY)]

	_ = [1]struct{}{}[int(C.POSIX_SPAWN_START_SUSPENDED)-POSIX_SPAWN_START_SUSPENDED]
	_ = [1]struct{}{}[int(C.POSIX_SPAWN_CLOEXEC_DEFAULT)-POSIX_SPAWN_CLOEXEC_DEFAULT]
	_ = [1]struct{}{}[int(C.POSIX_SPAWN_SETEXEC)-POSIX_SPAWN_SETEXEC]
)

// kern_return_t codes.
var (
	_ = [1]struct{}{}[int(C.KERN_INVALID_ADDRESS)-int(KERN_INVALID_ADDRESS)]
	_ = [1]struct{}{}[int(C.KERN_PROTECTION_FAILURE)-int(KERN_PROTECTION_FAILURE)]
	_ = [1]struct{}{}[int(C.KERN_INVALID_ARGUMENT)-int(KERN_INVALID_ARGUMENT)]
	_ = [1]struct{}{}[int(C.KERN_FAILURE)-int(KERN_FAILURE)]
	_ = [1]struct{}{}[int(C.KERN_NO_ACCESS)-int(KERN_NO_ACCESS)]
	_ = [1]struct{}{}[int(C.KERN_ABORTED)-int(KERN_ABORTED)]
	_ = [1]struct{}{}[int(C.KERN_INVALID_NAME)-int(KERN_INVALID_NAME)]
	_ = [1]struct{}{}[int(C.KERN_INVALID_RIGHT)-int(KERN_INVALID_RIGHT)]
	_ = [1]struct{}{}[int(C.KERN_UREFS_OVERFLOW)-int(KERN_UREFS_OVERFLOW)]
	_ = [1]struct{}{}[int(C.KERN_INVALID_SECURITY)-int(KERN_INVALID_SECURITY)]
	_ = [1]struct{}{}[int(C.KERN_TERMINATED)-int(KERN_TERMINATED)]
	_ = [1]struct{}{}[int(C.KERN_NOT_SUPPORTED)-int(KERN_NOT_SUPPORTED)]
	_ = [1]struct{}{}[int(C.KERN_OPERATION_TIMED_OUT)-int(KERN_OPERATION_TIMED_OUT)]
	_ = [1]struct{}{}[int(C.KERN_DENIED)-int(KERN_DENIED)]
	_ = [1]struct{}{}[int(C.MACH_SEND_INVALID_DEST)-int(MACH_SEND_INVALID_DEST)]
	_ = [1]struct{}{}[int(C.MACH_SEND_INVALID_RIGHT)-int(MACH_SEND_INVALID_RIGHT)]
	_ = [1]struct{}{}[int(C.MACH_RCV_INTERRUPTED)-int(MACH_RCV_INTERRUPTED)]
	_ = [1]struct{}{}[int(C.MACH_RCV_PORT_DIED)-int(MACH_RCV_PORT_DIED)]
	_ = [1]struct{}{}[int(C.MIG_BAD_ID)-int(MIG_BAD_ID)]
	_ = [1]struct{}{}[int(C.MIG_SERVER_DIED)-int(MIG_SERVER_DIED)]
)
