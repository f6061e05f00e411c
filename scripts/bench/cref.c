/*
 * cref: the minimal ptrace sampling loop, as a reference for machtrace's
 * benchmark. Seizes every thread of PID, then ITER times: PTRACE_INTERRUPT
 * every thread, wait for each stop, PTRACE_GETREGS each, PTRACE_CONT each.
 * Prints the cost per thread per sample. usage: cref PID ITER
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#define MAXT 1024

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: cref PID ITER\n");
		return 2;
	}
	int pid = atoi(argv[1]), iter = atoi(argv[2]);
	int tids[MAXT], n = 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d)) && n < MAXT) {
		int tid = atoi(e->d_name);
		if (tid > 0 && ptrace(PTRACE_SEIZE, tid, 0, 0) == 0)
			tids[n++] = tid;
	}
	closedir(d);
	struct user_regs_struct regs;
	int status;
	double t0 = now();
	for (int k = 0; k < iter; k++) {
		for (int i = 0; i < n; i++)
			ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
		for (int i = 0; i < n; i++) {
			while (waitpid(tids[i], &status, __WALL) < 0 && errno == EINTR)
				;
			ptrace(PTRACE_GETREGS, tids[i], 0, &regs);
		}
		for (int i = 0; i < n; i++)
			ptrace(PTRACE_CONT, tids[i], 0, 0);
	}
	double dt = now() - t0;
	for (int i = 0; i < n; i++) {
		ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
		waitpid(tids[i], &status, __WALL);
		ptrace(PTRACE_DETACH, tids[i], 0, 0);
	}
	printf("cref: %d threads, %d samples: %.2f us/thread\n", n, iter, dt / iter / n * 1e6);
	return 0;
}
