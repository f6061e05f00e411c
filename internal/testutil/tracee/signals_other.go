//go:build !unix

package tracee

import "os"

// echoSignals are the signals SignalEcho reports.
var echoSignals = []os.Signal{os.Interrupt}
