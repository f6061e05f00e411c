//go:build cgo

// shim_darwin.c: one shim per Mach routine, each a direct call with the
// argument types normalised (see shim_darwin.h). No policy lives here.

#include <spawn.h>
#include "shim_darwin.h"

uint32_t mt_task_self(void) { return mach_task_self(); }

kern_return_t mt_task_for_pid(int pid, uint32_t *task) {
	mach_port_name_t t = MACH_PORT_NULL;
	kern_return_t kr = task_for_pid(mach_task_self(), pid, &t);
	*task = t;
	return kr;
}

int mt_task_read_for_pid(int pid, uint32_t *task) {
	mach_port_name_t t = MACH_PORT_NULL;
	int r = task_read_for_pid(mach_task_self(), pid, &t);
	*task = t;
	return r;
}

kern_return_t mt_pid_for_task(uint32_t task, int *pid) { return pid_for_task(task, pid); }

kern_return_t mt_task_suspend2(uint32_t task, uint32_t *token) {
	task_suspension_token_t tok = MACH_PORT_NULL;
	kern_return_t kr = task_suspend2(task, &tok);
	*token = tok;
	return kr;
}

kern_return_t mt_task_resume2(uint32_t token) { return task_resume2(token); }

kern_return_t mt_task_resume(uint32_t task) { return task_resume(task); }

// mt_task_threads returns the MIG out-of-line array as is; the caller copies
// it and frees it with mt_thread_list_free (in our own address space).
kern_return_t mt_task_threads(uint32_t task, uint32_t **list, uint32_t *count) {
	thread_act_array_t l = NULL;
	mach_msg_type_number_t n = 0;
	kern_return_t kr = task_threads(task, &l, &n);
	*list = (uint32_t *)l;
	*count = n;
	return kr;
}

void mt_thread_list_free(uint32_t *list, uint32_t count) {
	if (list != NULL && count > 0) {
		vm_deallocate(mach_task_self(), (vm_address_t)list, count * sizeof(thread_act_t));
	}
}

kern_return_t mt_port_deallocate(uint32_t name) { return mach_port_deallocate(mach_task_self(), name); }

kern_return_t mt_thread_get_state(uint32_t thread, int flavor, void *state, uint32_t *count) {
	mach_msg_type_number_t n = *count;
	kern_return_t kr = thread_get_state(thread, flavor, (thread_state_t)state, &n);
	*count = n;
	return kr;
}

kern_return_t mt_thread_set_state(uint32_t thread, int flavor, void *state, uint32_t count) {
	return thread_set_state(thread, flavor, (thread_state_t)state, count);
}

kern_return_t mt_thread_info(uint32_t thread, int flavor, void *info, uint32_t *count) {
	mach_msg_type_number_t n = *count;
	kern_return_t kr = thread_info(thread, flavor, (thread_info_t)info, &n);
	*count = n;
	return kr;
}

kern_return_t mt_vm_read_overwrite(uint32_t task, uint64_t addr, uint64_t size, void *buf, uint64_t *outsize) {
	mach_vm_size_t out = 0;
	kern_return_t kr = mach_vm_read_overwrite(task, addr, size, (mach_vm_address_t)(uintptr_t)buf, &out);
	*outsize = out;
	return kr;
}

kern_return_t mt_vm_write(uint32_t task, uint64_t addr, const void *buf, uint32_t len) {
	return mach_vm_write(task, addr, (vm_offset_t)(uintptr_t)buf, len);
}

kern_return_t mt_vm_protect(uint32_t task, uint64_t addr, uint64_t size, int set_maximum, int prot) {
	return mach_vm_protect(task, addr, size, set_maximum ? TRUE : FALSE, prot);
}

// mt_vm_region copies the packed vm_region_basic_info_64 out as raw words
// (Go decodes them) and releases the object-name right the call returns.
kern_return_t mt_vm_region(uint32_t task, uint64_t *addr, uint64_t *size, uint32_t info[VM_REGION_BASIC_INFO_COUNT_64]) {
	mach_vm_address_t a = *addr;
	mach_vm_size_t s = 0;
	mach_msg_type_number_t n = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t obj = MACH_PORT_NULL;
	kern_return_t kr = mach_vm_region(task, &a, &s, VM_REGION_BASIC_INFO_64, (vm_region_info_t)info, &n, &obj);
	if (obj != MACH_PORT_NULL) {
		mach_port_deallocate(mach_task_self(), obj);
	}
	*addr = a;
	*size = s;
	return kr;
}

kern_return_t mt_vm_region_recurse(uint32_t task, uint64_t *addr, uint64_t *size, uint32_t *depth,
				   uint32_t info[VM_REGION_SUBMAP_INFO_COUNT_64]) {
	mach_vm_address_t a = *addr;
	mach_vm_size_t s = 0;
	natural_t d = *depth;
	mach_msg_type_number_t n = VM_REGION_SUBMAP_INFO_COUNT_64;
	kern_return_t kr = mach_vm_region_recurse(task, &a, &s, &d, (vm_region_recurse_info_t)info, &n);
	*addr = a;
	*size = s;
	*depth = d;
	return kr;
}

kern_return_t mt_task_info(uint32_t task, int flavor, void *info, uint32_t *count) {
	mach_msg_type_number_t n = *count;
	kern_return_t kr = task_info(task, flavor, (task_info_t)info, &n);
	*count = n;
	return kr;
}

int mt_csops_status(int pid, uint32_t *flags) {
	uint32_t f = 0;
	int r = csops(pid, 0 /* CS_OPS_STATUS */, &f, sizeof f);
	*flags = f;
	return r;
}

// mt_spawn runs posix_spawn with the three descriptors dup'ed onto 0, 1 and 2
// and every other descriptor closed (POSIX_SPAWN_CLOEXEC_DEFAULT is added).
// It returns 0 or an errno value, as posix_spawn does.
int mt_spawn(int *pid, const char *path, char *const argv[], char *const envp[], const char *dir,
	     int fd0, int fd1, int fd2, int flags) {
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t p = 0;
	int err = posix_spawn_file_actions_init(&fa);
	if (err != 0) {
		return err;
	}
	err = posix_spawnattr_init(&attr);
	if (err != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return err;
	}
	if (err == 0) err = posix_spawn_file_actions_adddup2(&fa, fd0, 0);
	if (err == 0) err = posix_spawn_file_actions_adddup2(&fa, fd1, 1);
	if (err == 0) err = posix_spawn_file_actions_adddup2(&fa, fd2, 2);
	if (err == 0 && dir != NULL && dir[0] != '\0') err = posix_spawn_file_actions_addchdir_np(&fa, dir);
	if (err == 0) err = posix_spawnattr_setflags(&attr, (short)(flags | POSIX_SPAWN_CLOEXEC_DEFAULT));
	if (err == 0) err = posix_spawn(&p, path, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	*pid = p;
	return err;
}

const char *mt_error_string(kern_return_t kr) { return mach_error_string(kr); }
