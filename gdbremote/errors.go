package gdbremote

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Errors returned by the client. Match them with errors.Is.
var (
	// ErrRunning means a request needs the guest halted (any byte sent to a
	// running QEMU guest stops it and is discarded, so the client refuses).
	ErrRunning = errors.New("guest is running (halt it first)")
	// ErrUnsupported means the stub answered a request with an empty reply,
	// the protocol's way of saying it does not implement it.
	ErrUnsupported = errors.New("request not supported by the stub")
	// ErrClosed means the connection was closed, by Close, Detach or after a
	// fatal error.
	ErrClosed = errors.New("connection closed")
)

// ProtocolError is an "Exx" error reply from the stub.
type ProtocolError struct {
	Op   string // the request, e.g. "m ffffffff81000000,40"
	Code uint8  // the xx of Exx, as hex digits read (QEMU's E14 is 0x14)
	Text string // the text of an "E.message" reply, if any
}

func (e *ProtocolError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("%s: stub error %q", e.Op, e.Text)
	}
	return fmt.Sprintf("%s: stub error E%02x", e.Op, e.Code)
}

// TimeoutError reports a stub that did not answer within the deadline. The
// connection is closed afterwards, since a late reply would be taken for the
// answer to a later request.
type TimeoutError struct {
	Addr  string
	Op    string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	if e.Op == "qSupported" {
		// QEMU serves one debugger at a time and leaves later connections
		// queued: when the first leaves, it takes the abandoned one and
		// pauses the VM.
		return fmt.Sprintf("gdb://%s: no answer to %s within %v (is the VM alive and its stub not held by another debugger? if one is: when it leaves, QEMU pauses the VM for this abandoned connection; the next machtrace command resumes it)", e.Addr, e.Op, e.After)
	}
	return fmt.Sprintf("gdb://%s: no answer to %s within %v (is the VM alive and its stub not held by another debugger?)", e.Addr, e.Op, e.After)
}

// Unwrap returns os.ErrDeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }
