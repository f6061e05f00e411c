package tracer

import (
	"errors"

	"github.com/machtrace/machtrace/darwin"
)

// darwinBackend adapts a darwin.Task (the macOS backend, on the Mach calls
// of package mach) to the Backend contract. Thread ids are Mach thread ids
// (THREAD_IDENTIFIER_INFO); register flavors map onto Mach thread-state
// flavors (machstate.go).
type darwinBackend struct {
	t    *darwin.Task
	arch Arch
}

func attachLocal(pid int) (Target, error) {
	t, err := darwin.Attach(pid)
	if err != nil {
		return nil, darwinError(err)
	}
	return NewTarget(newDarwinBackend(t)), nil
}

func launchLocal(argv []string, opts LaunchOptions) (Target, error) {
	t, err := darwin.Launch(argv, darwin.LaunchOptions{
		Env: opts.Env, Dir: opts.Dir, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
	})
	if err != nil {
		return nil, darwinError(err)
	}
	// posix_spawn's start-suspended hold counts as the one suspension.
	return NewSuspendedTarget(newDarwinBackend(t)), nil
}

func newDarwinBackend(t *darwin.Task) *darwinBackend {
	arch, _ := ParseArch(t.Arch())
	return &darwinBackend{t: t, arch: arch}
}

func (b *darwinBackend) Arch() Arch       { return b.arch }
func (b *darwinBackend) Describe() string { return b.t.Describe() }
func (b *darwinBackend) PID() int         { return b.t.PID() }

// StripPointer implements PointerStripper: return addresses saved by arm64e
// code carry PAC bits, which the unwinder must remove.
func (b *darwinBackend) StripPointer(addr uint64) uint64 { return b.t.StripPointer(addr) }

// Wait implements Waiter for launched processes.
func (b *darwinBackend) Wait() (int, error) {
	st, err := b.t.Wait()
	return st, darwinError(err)
}

func (b *darwinBackend) Threads() ([]Thread, error) {
	ths, err := b.t.Threads()
	if err != nil {
		return nil, darwinError(err)
	}
	out := make([]Thread, len(ths))
	for i, th := range ths {
		st := runStateFromMach(th.RunState)
		if th.SuspendCount > 0 || b.t.Suspended() {
			st = StateStopped
		}
		out[i] = Thread{ID: ThreadID(th.ID), Name: th.Name, State: st}
	}
	return out, nil
}

// ThreadIDs implements ThreadLister: one task_threads call, no thread_info
// for threads already known.
func (b *darwinBackend) ThreadIDs() ([]ThreadID, error) {
	ids, err := b.t.ThreadIDs()
	if err != nil {
		return nil, darwinError(err)
	}
	out := make([]ThreadID, len(ids))
	for i, id := range ids {
		out[i] = ThreadID(id)
	}
	return out, nil
}

func (b *darwinBackend) Stop() error     { return darwinError(b.t.Suspend()) }
func (b *darwinBackend) Continue() error { return darwinError(b.t.Resume()) }

func (b *darwinBackend) GetState(tid ThreadID, flavor Flavor) (*Registers, error) {
	mf, err := MachFlavor(b.arch, flavor)
	if err != nil {
		return nil, err
	}
	s, err := b.t.GetState(uint64(tid), mf)
	if err != nil {
		return nil, darwinError(err)
	}
	return RegistersFromMach(b.arch, flavor, s)
}

func (b *darwinBackend) SetState(tid ThreadID, regs *Registers) error {
	mf, err := MachFlavor(b.arch, regs.Flavor())
	if err != nil {
		return err
	}
	// Start from the thread's current state so that reserved bytes and
	// flags no register covers keep their values.
	base, err := b.t.GetState(uint64(tid), mf)
	if err != nil {
		return darwinError(err)
	}
	s, err := MachStateFromRegisters(regs, base)
	if err != nil {
		return err
	}
	return darwinError(b.t.SetState(uint64(tid), s))
}

func (b *darwinBackend) ReadMemory(addr uint64, p []byte) (int, error) {
	n, err := b.t.ReadMemory(addr, p)
	return n, darwinError(err)
}

func (b *darwinBackend) WriteMemory(addr uint64, p []byte) (int, error) {
	n, err := b.t.WriteMemory(addr, p)
	return n, darwinError(err)
}

// Images lists the Mach-O images dyld has loaded. Base is the mach_header
// address, from which the symbolizer computes the slide.
func (b *darwinBackend) Images() ([]Image, error) {
	ims, err := b.t.Images()
	if err != nil && (len(ims) == 0 || !errors.Is(err, darwin.ErrImageListBusy)) {
		return nil, darwinError(err)
	}
	out := make([]Image, len(ims))
	for i, im := range ims {
		out[i] = Image{Path: im.Path, Start: im.Start, End: im.End, Perms: "r-x", Base: im.Base}
	}
	return out, nil
}

func (b *darwinBackend) Detach() error { return darwinError(b.t.Detach()) }

// darwinSentinels maps the backend's sentinels onto the tracer's.
var darwinSentinels = []struct{ from, to error }{
	{darwin.ErrNoProcess, ErrNoProcess},
	{darwin.ErrPermission, ErrPermission},
	{darwin.ErrPlatformBinary, ErrPermission},
	{darwin.ErrExited, ErrExited},
	{darwin.ErrNoThread, ErrNoThread},
	{darwin.ErrUnmapped, ErrUnmapped},
}

// darwinError adds the matching tracer sentinel to a backend error, keeping
// its text and its chain (errors.As still finds *darwin.AttachError).
func darwinError(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range darwinSentinels {
		if errors.Is(err, m.from) {
			return &mappedError{err: err, sentinel: m.to}
		}
	}
	return err
}

// mappedError is a backend error that also matches a tracer sentinel.
type mappedError struct {
	err      error
	sentinel error
}

func (e *mappedError) Error() string   { return e.err.Error() }
func (e *mappedError) Unwrap() []error { return []error{e.err, e.sentinel} }
