package tracer

import (
	"time"

	"golang.org/x/sys/unix"
)

// sleepFor blocks the calling OS thread with nanosleep. The sampler runs on a
// locked OS thread (ptrace), where a plain system call wakes up more
// precisely than a runtime timer.
func sleepFor(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}
