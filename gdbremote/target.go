package gdbremote

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/machtrace/machtrace/tracer"
)

// TargetOptions configure OpenTarget.
type TargetOptions struct {
	Options
	// StayHalted leaves the guest halted after connecting (the returned
	// target is then suspended once); by default the guest runs again, as
	// it did before the debugger attached.
	StayHalted bool
}

// Backend is a tracer.Backend over a GDB remote stub: every vCPU is a
// thread, FlavorGeneral holds the integer and segment registers,
// FlavorFloat x87/SSE (or NEON), FlavorSystem the control registers the stub
// exposes (cr0, cr2, cr3, cr4, cr8, efer, kernel gs base on QEMU x86_64).
//
// Calls that need the guest halted while it runs (reading registers or
// memory without a Suspend) halt it, do the work and let it run again.
type Backend struct {
	cl      *Client
	note    atomic.Pointer[string] // read by Describe from any goroutine
	ncpu    atomic.Int32
	layouts map[tracer.Flavor]*tracer.Layout
	regs    map[tracer.Flavor][]Reg // in layout order
	ids     map[tracer.ThreadID]string
	// memThread is the vCPU whose page tables memory accesses use: the
	// one whose registers were read or written last (so a stack read
	// after a register read sees that vCPU's process), else the first.
	memThread string

	// run accounting, for the guest's share of wall time
	opened   time.Time
	runSince time.Time
	ran      time.Duration
}

// OpenTarget connects to the stub at addr ("host:port", or "gdb://host:port")
// and returns it as a tracer.Target. opts may be nil.
func OpenTarget(addr string, opts *TargetOptions) (tracer.Target, error) {
	addr = strings.TrimPrefix(addr, "gdb://")
	var o *Options
	if opts != nil {
		o = &opts.Options
	}
	cl, err := Dial(addr, o)
	if err != nil {
		return nil, err
	}
	b, err := NewBackend(cl)
	if err != nil {
		cl.Detach()
		return nil, err
	}
	if opts != nil && opts.StayHalted {
		// The guest is halted already: the target starts suspended once.
		return tracer.NewSuspendedTarget(b), nil
	}
	t := tracer.NewTarget(b)
	if err := b.Continue(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("gdb://%s: resume after connect: %w", addr, err)
	}
	return t, nil
}

// NewBackend builds the backend over a connected, halted client.
func NewBackend(cl *Client) (*Backend, error) {
	b := &Backend{cl: cl, layouts: map[tracer.Flavor]*tracer.Layout{}, regs: map[tracer.Flavor][]Reg{}, ids: map[tracer.ThreadID]string{}, opened: time.Now()}
	descs := map[tracer.Flavor][]tracer.RegDesc{}
	for _, r := range cl.Target.Regs {
		descs[r.Flavor] = append(descs[r.Flavor], tracer.RegDesc{Name: canonicalName(cl.Target.Arch, r.Name), Size: r.Size()})
		b.regs[r.Flavor] = append(b.regs[r.Flavor], r)
	}
	for f, d := range descs {
		b.layouts[f] = tracer.NewLayout(cl.Target.Arch, f, d)
	}
	if _, ok := b.layouts[tracer.FlavorGeneral]; !ok {
		return nil, fmt.Errorf("gdb://%s: the target description has no general-purpose registers", cl.addr)
	}
	b.mapThreads(cl.threads)
	if len(cl.threads) > 0 {
		b.memThread = cl.threads[0].ID
	}
	return b, nil
}

// Client returns the protocol client, for what the tracer model lacks
// (breakpoints, monitor commands, single steps). Use it only while holding
// the target suspended, and not from several goroutines.
func (b *Backend) Client() *Client { return b.cl }

// Layout returns the register layout of a flavor, or nil if the stub
// exposes no register of that flavor.
func (b *Backend) Layout(f tracer.Flavor) *tracer.Layout { return b.layouts[f] }

func (b *Backend) mapThreads(list []ThreadInfo) {
	b.ncpu.Store(int32(len(list)))
	clear(b.ids)
	multi := false
	for _, t := range list {
		if t.PID > 1 {
			multi = true
		}
	}
	for _, t := range list {
		id := tracer.ThreadID(t.TID)
		if multi {
			id = tracer.ThreadID(t.PID<<32 | t.TID)
		}
		b.ids[id] = t.ID
	}
}

// Arch implements tracer.Backend.
func (b *Backend) Arch() tracer.Arch { return b.cl.Target.Arch }

// Describe implements tracer.Backend.
func (b *Backend) Describe() string {
	s := fmt.Sprintf("gdb://%s (%s, %d vCPUs", b.cl.addr, b.cl.Target.Architecture, b.ncpu.Load())
	if n := b.note.Load(); n != nil && *n != "" {
		s += "; " + *n
	}
	return s + ")"
}

// SetNote adds a remark to Describe, such as the kernel's KASLR slide.
func (b *Backend) SetNote(s string) { b.note.Store(&s) }

// transient halts a running guest for the duration of f.
func (b *Backend) transient(f func() error) error {
	if !b.cl.running {
		return f()
	}
	if err := b.Stop(); err != nil {
		return err
	}
	err := f()
	if cerr := b.Continue(); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// Threads implements tracer.Backend: one thread per vCPU, named from the
// stub's extra info ("CPU#0"), halted if the vCPU was idling in hlt.
func (b *Backend) Threads() ([]tracer.Thread, error) {
	var list []ThreadInfo
	err := b.transient(func() error {
		var err error
		list, err = b.cl.refreshThreads()
		return err
	})
	if err != nil {
		return nil, err
	}
	b.mapThreads(list)
	out := make([]tracer.Thread, 0, len(list))
	for _, t := range list {
		th := tracer.Thread{Name: t.Extra, State: tracer.StateStopped}
		for id, w := range b.ids {
			if w == t.ID {
				th.ID = id
			}
		}
		if name, state, ok := strings.Cut(t.Extra, "["); ok {
			th.Name = strings.TrimSpace(name)
			switch strings.TrimSpace(strings.TrimSuffix(state, "]")) {
			case "halted":
				th.State = tracer.StateHalted
			case "running":
				// QEMU's "running": the vCPU was not idle when halted.
				th.State = tracer.StateStopped
			}
		}
		out = append(out, th)
	}
	return out, nil
}

// Stop implements tracer.Backend: 0x03 and the stop reply.
func (b *Backend) Stop() error {
	if !b.cl.running {
		return nil
	}
	if err := b.cl.Halt(); err != nil {
		return err
	}
	b.ran += time.Since(b.runSince)
	return nil
}

// Continue implements tracer.Backend.
func (b *Backend) Continue() error {
	if b.cl.running {
		return nil
	}
	if err := b.cl.Continue(); err != nil {
		return err
	}
	b.runSince = time.Now()
	return nil
}

// RunShare returns how long the guest has run while connected and the wall
// time since OpenTarget: the guest's share of wall time is run/wall.
func (b *Backend) RunShare() (run, wall time.Duration) {
	run = b.ran
	if b.cl.running {
		run += time.Since(b.runSince)
	}
	return run, time.Since(b.opened)
}

func (b *Backend) wireID(tid tracer.ThreadID) (string, error) {
	if id, ok := b.ids[tid]; ok {
		return id, nil
	}
	return "", fmt.Errorf("thread %d: %w (vCPUs are threads %s)", tid, tracer.ErrNoThread, b.threadList())
}

func (b *Backend) threadList() string {
	var s []string
	for _, t := range b.cl.threads {
		_, tid, _ := parseThreadID(t.ID)
		s = append(s, fmt.Sprint(tid))
	}
	return strings.Join(s, ", ")
}

// GetState implements tracer.Backend.
func (b *Backend) GetState(tid tracer.ThreadID, flavor tracer.Flavor) (*tracer.Registers, error) {
	l, ok := b.layouts[flavor]
	if !ok {
		return nil, fmt.Errorf("gdb://%s: %w: the stub exposes no %s registers", b.cl.addr, errors.ErrUnsupported, flavor)
	}
	id, err := b.wireID(tid)
	if err != nil {
		return nil, err
	}
	b.memThread = id
	var all []byte
	err = b.transient(func() error {
		var err error
		all, err = b.cl.ReadRegisters(id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registers of vCPU thread %d: %w", tid, err)
	}
	regs := tracer.NewRegisters(l)
	for i, r := range b.regs[flavor] {
		if r.Offset+r.Size() > len(all) {
			continue
		}
		if err := regs.SetBytesAt(i, all[r.Offset:r.Offset+r.Size()]); err != nil {
			return nil, err
		}
	}
	return regs, nil
}

// SetState implements tracer.Backend: each register that differs from the
// current value is written with P (G where the stub lacks P).
func (b *Backend) SetState(tid tracer.ThreadID, regs *tracer.Registers) error {
	flavor := regs.Flavor()
	if regs.Layout() != b.layouts[flavor] {
		return fmt.Errorf("gdb://%s: registers were not read from this target (use ThreadState first)", b.cl.addr)
	}
	id, err := b.wireID(tid)
	if err != nil {
		return err
	}
	b.memThread = id
	return b.transient(func() error {
		all, err := b.cl.ReadRegisters(id)
		if err != nil {
			return err
		}
		for i, r := range b.regs[flavor] {
			want := regs.BytesAt(i)
			have := all[r.Offset : r.Offset+r.Size()]
			if string(want) == string(have) {
				continue
			}
			if err := b.cl.WriteRegister(id, r.Num, want); err != nil {
				return fmt.Errorf("write %s of vCPU thread %d: %w", r.Name, tid, err)
			}
		}
		return nil
	})
}

// ReadMemory implements tracer.Backend: guest virtual addresses, through the
// page tables of the vCPU whose registers were read or written last (kernel
// addresses are the same on every vCPU; user addresses belong to the
// process that vCPU runs). SetMemoryThread picks another.
func (b *Backend) ReadMemory(addr uint64, p []byte) (int, error) {
	var n int
	err := b.transient(func() error {
		if err := b.cl.selectThread(b.memThread); err != nil {
			return err
		}
		var err error
		n, err = b.cl.ReadMemory(addr, p)
		return err
	})
	return n, err
}

// SetMemoryThread makes memory accesses use vCPU tid's page tables.
func (b *Backend) SetMemoryThread(tid tracer.ThreadID) error {
	id, err := b.wireID(tid)
	if err != nil {
		return err
	}
	b.memThread = id
	return nil
}

// WriteMemory implements tracer.Backend.
func (b *Backend) WriteMemory(addr uint64, p []byte) (int, error) {
	var n int
	err := b.transient(func() error {
		if err := b.cl.selectThread(b.memThread); err != nil {
			return err
		}
		var err error
		n, err = b.cl.WriteMemory(addr, p)
		return err
	})
	return n, err
}

// Images implements tracer.Backend. A stub knows nothing of the guest's
// images: kernel symbols come from a kallsyms or System.map file.
func (b *Backend) Images() ([]tracer.Image, error) { return nil, nil }

// Detach implements tracer.Backend: the guest runs on.
func (b *Backend) Detach() error { return b.cl.Detach() }

// Step executes one instruction on one vCPU (QEMU steps with interrupts
// and timers masked) and leaves the guest halted: kdpbridge.Stepper.
func (b *Backend) Step(tid tracer.ThreadID) error {
	id, err := b.wireID(tid)
	if err != nil {
		return err
	}
	if err := b.Stop(); err != nil {
		return err
	}
	return b.cl.Step(id)
}
