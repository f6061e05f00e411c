package cli

import (
	"fmt"
	"net/url"
	"time"

	"github.com/machtrace/machtrace/gdbremote"
)

// openGDB opens gdb://HOST:PORT[?timeout=DURATION&halted=1]: a hypervisor's
// GDB stub (QEMU -gdb, VMware debugStub, Virtualization.framework). With
// --kallsyms it loads the kernel's symbols and finds the KASLR slide through
// the stub; the slide shows in the target's description.
func openGDB(o *TargetOptions, u *url.URL) (*Session, error) {
	if u.Port() == "" {
		return nil, flagErrorf("--target %q: give the stub's port, e.g. gdb://127.0.0.1:1234 (QEMU -gdb tcp:127.0.0.1:1234; VMware: 8864)", o.URL)
	}
	opts := &gdbremote.TargetOptions{}
	q := u.Query()
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, flagErrorf("--target %q: timeout=%q is not a duration (e.g. 10s)", o.URL, v)
		}
		opts.Timeout = d
	}
	switch q.Get("halted") {
	case "", "0", "false":
	default:
		opts.StayHalted = true
	}
	t, err := gdbremote.OpenTarget(u.Host, opts)
	if err != nil {
		return nil, err
	}
	s := &Session{Target: t, Kernel: true}
	if o.Kallsyms != "" {
		sym, _, _, err := gdbremote.KernelSymbols(t, o.Kallsyms)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("--kallsyms: %w", err)
		}
		s.KernelSymbols = sym
	}
	return s, nil
}
