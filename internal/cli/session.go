package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/machtrace/machtrace/tracer"
)

// withTarget opens the target, runs fn and closes it, so the target is
// detached and running whatever fn does. Ctrl-C (ctx) is honoured by fn.
func withTarget(ctx context.Context, f *Factory, o *TargetOptions, fn func(*Session) error) (err error) {
	s, err := f.Open(o)
	if err != nil {
		return explainOpenError(o, err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return fn(s)
}

// explainOpenError adds what to do to the common failures.
func explainOpenError(o *TargetOptions, err error) error {
	switch {
	case errors.Is(err, tracer.ErrNoProcess):
		return fmt.Errorf("%w (check the pid with ps; it may have exited)", err)
	case errors.Is(err, tracer.ErrPermission):
		return err // the backend's diagnosis already says which rule and the fix
	}
	return err
}

// suspended runs fn with the target suspended (a launched target already is).
func suspended(t tracer.Target, fn func() error) error {
	if err := t.Suspend(); err != nil {
		return err
	}
	ferr := fn()
	if err := t.Resume(); err != nil && ferr == nil && !errors.Is(err, tracer.ErrExited) {
		ferr = err
	}
	return ferr
}

// selectThreads returns the threads to show: all, or the one --tid names.
func selectThreads(t tracer.Target, tid uint64) ([]tracer.Thread, error) {
	threads, err := t.Threads()
	if err != nil {
		return nil, err
	}
	if tid == 0 {
		return threads, nil
	}
	for _, th := range threads {
		if uint64(th.ID) == tid {
			return []tracer.Thread{th}, nil
		}
	}
	ids := make([]string, len(threads))
	for i, th := range threads {
		ids[i] = strconv.FormatUint(uint64(th.ID), 10)
	}
	return nil, fmt.Errorf("thread %d: %w (threads: %s)", tid, tracer.ErrNoThread, strings.Join(ids, " "))
}

// parseAddress accepts a number (0x hex or decimal), a symbol, or
// symbol+offset.
func parseAddress(s *Session, expr string) (uint64, error) {
	if v, err := strconv.ParseUint(expr, 0, 64); err == nil {
		return v, nil
	}
	name, off := expr, uint64(0)
	if i := strings.LastIndexByte(expr, '+'); i > 0 {
		v, err := strconv.ParseUint(expr[i+1:], 0, 64)
		if err == nil {
			name, off = expr[:i], v
		}
	}
	addr, err := s.Symbolizer().Addr(name)
	if err != nil {
		return 0, fmt.Errorf("address %q: not a number, and no symbol of that name (%v)", expr, err)
	}
	return addr + off, nil
}

// parseUint parses a number in C notation (0x hex, 0 octal, or decimal).
func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (use decimal or 0x hex)", s)
	}
	return v, nil
}
