//go:build unix

package tracee

import (
	"os"
	"syscall"
)

// echoSignals are the signals SignalEcho reports.
var echoSignals = []os.Signal{syscall.SIGUSR1, syscall.SIGTERM}
