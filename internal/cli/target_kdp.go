package cli

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/machtrace/machtrace/kdpbridge"
)

// openKDP opens kdp://HOST[:PORT][?timeout=DURATION&tries=N&halted=1]: an
// XNU kernel's KDP stub (or `machtrace kdp serve`). The kernel must be halted
// in its debugger. By default it runs again when the command ends
// (DISCONNECT, as LLDB's detach); with halted=1 it stays halted, so that
// further commands can connect.
func openKDP(o *TargetOptions, u *url.URL) (*Session, error) {
	if o.Kallsyms != "" {
		return nil, flagErrorf("--kallsyms is for gdb:// targets; a KDP target names its kernel in its version string")
	}
	var opts kdpbridge.TargetOptions
	q := u.Query()
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, flagErrorf("--target %q: timeout=%q is not a duration (e.g. 2s)", o.URL, v)
		}
		opts.Timeout = d
	}
	if v := q.Get("tries"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, flagErrorf("--target %q: tries=%q is not a positive number", o.URL, v)
		}
		opts.Tries = n
	}
	switch q.Get("halted") {
	case "", "0", "false":
	default:
		opts.StayHalted = true
	}
	t, err := kdpbridge.Dial(context.Background(), u.Host, &opts)
	if err != nil {
		return nil, err
	}
	return &Session{Target: t, Kernel: true}, nil
}
