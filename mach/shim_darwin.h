// shim_darwin.h: declarations machtrace needs beyond what every SDK declares,
// and the prototypes of the mt_* shims in shim_darwin.c.
//
// The shims take and return only fixed-width integers and void pointers, so
// the Go side is independent of which typedef (task_t, task_read_t, ...) a
// given SDK uses in its prototypes, and packed structs never cross into Go.

#ifndef MACHTRACE_SHIM_DARWIN_H
#define MACHTRACE_SHIM_DARWIN_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <mach/mach.h>
#include <mach/mach_error.h>
#include <mach/task_info.h>
#include <mach/thread_info.h>
#include <mach/thread_status.h>
#include <mach/vm_region.h>

// <mach/mach_vm.h> is part of Xcode's SDK but not of zig's bundled headers;
// the prototypes follow osfmk/mach/mach_vm.defs (see docs mach-api.md 5.1).
#if __has_include(<mach/mach_vm.h>)
#include <mach/mach_vm.h>
#else
extern kern_return_t mach_vm_protect(vm_map_t target_task, mach_vm_address_t address, mach_vm_size_t size,
				     boolean_t set_maximum, vm_prot_t new_protection);
extern kern_return_t mach_vm_read_overwrite(vm_map_read_t target_task, mach_vm_address_t address,
					    mach_vm_size_t size, mach_vm_address_t data, mach_vm_size_t *outsize);
extern kern_return_t mach_vm_write(vm_map_t target_task, mach_vm_address_t address, vm_offset_t data,
				   mach_msg_type_number_t dataCnt);
extern kern_return_t mach_vm_region(vm_map_read_t target_task, mach_vm_address_t *address,
				    mach_vm_size_t *size, vm_region_flavor_t flavor, vm_region_info_t info,
				    mach_msg_type_number_t *infoCnt, mach_port_t *object_name);
extern kern_return_t mach_vm_region_recurse(vm_map_read_t target_task, mach_vm_address_t *address,
					    mach_vm_size_t *size, natural_t *nesting_depth,
					    vm_region_recurse_info_t info, mach_msg_type_number_t *infoCnt);
#endif

// BSD system calls exported by libSystem without a public prototype.
// task_read_for_pid returns 0, or -1 with errno (EPERM, ESRCH, ...).
extern int task_read_for_pid(mach_port_name_t target_tport, int pid, mach_port_name_t *t);
extern int csops(pid_t pid, unsigned int ops, void *useraddr, size_t usersize);

uint32_t mt_task_self(void);
kern_return_t mt_task_for_pid(int pid, uint32_t *task);
int mt_task_read_for_pid(int pid, uint32_t *task);
kern_return_t mt_pid_for_task(uint32_t task, int *pid);
kern_return_t mt_task_suspend2(uint32_t task, uint32_t *token);
kern_return_t mt_task_resume2(uint32_t token);
kern_return_t mt_task_resume(uint32_t task);
kern_return_t mt_task_threads(uint32_t task, uint32_t **list, uint32_t *count);
void mt_thread_list_free(uint32_t *list, uint32_t count);
kern_return_t mt_port_deallocate(uint32_t name);
kern_return_t mt_thread_get_state(uint32_t thread, int flavor, void *state, uint32_t *count);
kern_return_t mt_thread_set_state(uint32_t thread, int flavor, void *state, uint32_t count);
kern_return_t mt_thread_info(uint32_t thread, int flavor, void *info, uint32_t *count);
kern_return_t mt_vm_read_overwrite(uint32_t task, uint64_t addr, uint64_t size, void *buf, uint64_t *outsize);
kern_return_t mt_vm_write(uint32_t task, uint64_t addr, const void *buf, uint32_t len);
kern_return_t mt_vm_protect(uint32_t task, uint64_t addr, uint64_t size, int set_maximum, int prot);
kern_return_t mt_vm_region(uint32_t task, uint64_t *addr, uint64_t *size, uint32_t info[VM_REGION_BASIC_INFO_COUNT_64]);
kern_return_t mt_vm_region_recurse(uint32_t task, uint64_t *addr, uint64_t *size, uint32_t *depth,
				   uint32_t info[VM_REGION_SUBMAP_INFO_COUNT_64]);
kern_return_t mt_task_info(uint32_t task, int flavor, void *info, uint32_t *count);
int mt_csops_status(int pid, uint32_t *flags);
int mt_spawn(int *pid, const char *path, char *const argv[], char *const envp[], const char *dir,
	     int fd0, int fd1, int fd2, int flags);
const char *mt_error_string(kern_return_t kr);

#endif
