package cli

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/machtrace/machtrace/kdpbridge"
)

// openKDP opens kdp://HOST[:PORT][?timeout=DURATION&tries=N]: an XNU
// kernel's KDP stub (or `machtrace kdp serve`). The kernel must be halted in
// its debugger; it stays halted while machtrace holds it and runs again when
// the session ends (DISCONNECT).
func openKDP(o *TargetOptions, u *url.URL) (*Session, error) {
	if o.Kallsyms != "" {
		return nil, flagErrorf("--kallsyms is for gdb:// targets; a KDP target names its kernel in its version string")
	}
	var opts kdpbridge.ClientOptions
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
	t, err := kdpbridge.Dial(context.Background(), u.Host, opts)
	if err != nil {
		return nil, err
	}
	return &Session{Target: t, Kernel: true}, nil
}
