package tracer

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ThreadID identifies a thread within a target: a Linux tid, a Mach
// thread_id (THREAD_IDENTIFIER_INFO), a CPU number for KDP, or a GDB thread id
// (one per vCPU).
type ThreadID uint64

// RunState is a thread's scheduling state as the OS reports it.
type RunState uint8

// Thread run states.
const (
	StateUnknown  RunState = iota
	StateRunning           // on a CPU or runnable
	StateSleeping          // waiting (interruptible)
	StateBlocked           // waiting uninterruptibly (disk sleep)
	StateStopped           // stopped by a signal, the tracer or the debugger
	StateHalted            // halted (Mach TH_STATE_HALTED, a halted vCPU)
	StateZombie            // exited, not yet reaped
)

// String returns a short name of the state.
func (s RunState) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateSleeping:
		return "sleeping"
	case StateBlocked:
		return "blocked"
	case StateStopped:
		return "stopped"
	case StateHalted:
		return "halted"
	case StateZombie:
		return "zombie"
	}
	return "unknown"
}

// Thread describes one thread of a target.
type Thread struct {
	ID    ThreadID
	Name  string   // may be empty
	State RunState // as seen by the OS when the list was taken
}

// Image is a loaded module: a mapping of a file (executable, shared library,
// kernel) into the target's address space.
type Image struct {
	Path   string // file path as the target sees it; may be a pseudo path ("[vdso]")
	Start  uint64 // first address of the mapping
	End    uint64 // one past the last address
	Offset uint64 // file offset mapped at Start
	Perms  string // "r-xp" style where known
	// Base is the address of the image's header (ELF: the lowest mapping of
	// the file; Mach-O: the mach_header) when the backend knows it, else 0.
	Base uint64
}

// Contains reports whether addr falls inside the image mapping.
func (im Image) Contains(addr uint64) bool { return addr >= im.Start && addr < im.End }

// Errors shared by every backend. Backends wrap them with context, so match
// them with errors.Is.
var (
	// ErrExited means the target process (or kernel connection) is gone.
	ErrExited = errors.New("target exited")
	// ErrNoThread means the thread does not exist (any more).
	ErrNoThread = errors.New("no such thread")
	// ErrNoProcess means no process has the given pid.
	ErrNoProcess = errors.New("no such process")
	// ErrPermission means the OS refused to let the tracer control the target.
	ErrPermission = errors.New("permission denied")
	// ErrCannotHalt means the target cannot be stopped at will (a KDP kernel
	// that is running, for example): sample it through a trigger instead.
	ErrCannotHalt = errors.New("target cannot be halted at will")
	// ErrUnmapped means a memory access touched an address that is not mapped.
	ErrUnmapped = errors.New("address not mapped")
	// ErrWriteRefused means a write was not explicitly allowed.
	ErrWriteRefused = errors.New("write refused")
)

// Backend is the contract a platform or protocol implements. It is smaller
// than Target: the backend stops and continues the whole target; counting
// nested suspensions, locking and capability checks live in NewTarget.
//
// Thread safety: NewTarget calls a Backend from one goroutine at a time.
// Backends that need an OS thread of their own (ptrace) arrange it themselves.
type Backend interface {
	Arch() Arch
	// Describe names the target for humans ("pid 1234 (workload)",
	// "gdb://127.0.0.1:1234").
	Describe() string
	Threads() ([]Thread, error)
	// Stop stops every thread; it is called only when the target runs.
	Stop() error
	// Continue resumes every thread; it is called only when stopped.
	Continue() error
	GetState(tid ThreadID, flavor Flavor) (*Registers, error)
	SetState(tid ThreadID, regs *Registers) error
	ReadMemory(addr uint64, p []byte) (int, error)
	WriteMemory(addr uint64, p []byte) (int, error)
	Images() ([]Image, error)
	// Detach releases the target and leaves it running.
	Detach() error
}

// Target is a traced task, safe for use by several goroutines.
type Target interface {
	Arch() Arch
	Describe() string
	Threads() ([]Thread, error)
	// Suspend stops the whole target. Calls nest: the target runs again
	// when Resume has been called as often as Suspend.
	Suspend() error
	// Resume undoes one Suspend. Resuming a running target is an error
	// that leaves it running.
	Resume() error
	// Suspended reports whether the target is held stopped by the tracer.
	Suspended() bool
	ThreadState(tid ThreadID, flavor Flavor) (*Registers, error)
	SetThreadState(tid ThreadID, regs *Registers) error
	ReadMemory(addr uint64, p []byte) (int, error)
	WriteMemory(addr uint64, p []byte) (int, error)
	Images() ([]Image, error)
	// Close detaches; the target keeps running, even if it was suspended.
	Close() error
	// Backend gives access to the backend for optional interfaces.
	Backend() Backend
}

// ErrNotSuspended is returned by Resume on a target that is not suspended.
var ErrNotSuspended = errors.New("target is not suspended")

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("target closed")

// NewTarget wraps a backend into a Target.
func NewTarget(b Backend) Target { return &target{b: b} }

type target struct {
	mu       sync.Mutex
	b        Backend
	suspends int
	closed   bool
}

func (t *target) Backend() Backend { return t.b }
func (t *target) Arch() Arch       { return t.b.Arch() }
func (t *target) Describe() string { return t.b.Describe() }

func (t *target) check() error {
	if t.closed {
		return ErrClosed
	}
	return nil
}

func (t *target) Threads() ([]Thread, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.b.Threads()
}

func (t *target) Suspend() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return err
	}
	if t.suspends == 0 {
		if err := t.b.Stop(); err != nil {
			return fmt.Errorf("suspend: %w", err)
		}
	}
	t.suspends++
	return nil
}

func (t *target) Resume() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return err
	}
	if t.suspends == 0 {
		return fmt.Errorf("resume %s: %w", t.b.Describe(), ErrNotSuspended)
	}
	if t.suspends == 1 {
		if err := t.b.Continue(); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	t.suspends--
	return nil
}

func (t *target) Suspended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.suspends > 0
}

func (t *target) ThreadState(tid ThreadID, flavor Flavor) (*Registers, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.b.GetState(tid, flavor)
}

func (t *target) SetThreadState(tid ThreadID, regs *Registers) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return err
	}
	if regs == nil {
		return errors.New("set thread state: nil registers")
	}
	if regs.Arch() != t.b.Arch() {
		return fmt.Errorf("set thread state: registers are %s, target is %s", regs.Arch(), t.b.Arch())
	}
	return t.b.SetState(tid, regs)
}

func (t *target) ReadMemory(addr uint64, p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return 0, err
	}
	return t.b.ReadMemory(addr, p)
}

func (t *target) WriteMemory(addr uint64, p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return 0, err
	}
	return t.b.WriteMemory(addr, p)
}

func (t *target) Images() ([]Image, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.b.Images()
}

func (t *target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.suspends > 0 {
		if err := t.b.Continue(); err != nil && !errors.Is(err, ErrExited) {
			errs = append(errs, fmt.Errorf("resume before detach: %w", err))
		}
		t.suspends = 0
	}
	if err := t.b.Detach(); err != nil && !errors.Is(err, ErrExited) {
		errs = append(errs, fmt.Errorf("detach %s: %w", t.b.Describe(), err))
	}
	return errors.Join(errs...)
}

// NewSuspendedTarget wraps a backend whose target is already stopped (a
// process launched stopped, a VM halted by its stub at connect). The target
// starts suspended once: call Resume to let it run.
func NewSuspendedTarget(b Backend) Target { return &target{b: b, suspends: 1} }

// ThreadLister is an optional Backend fast path: the thread ids without the
// names and states that Threads reads from the OS. The sampler calls it once
// per sample.
type ThreadLister interface {
	ThreadIDs() ([]ThreadID, error)
}

// ThreadBound is implemented by backends whose OS calls must all come from one
// OS thread (ptrace). Run executes fn on that thread, where the backend's
// methods are direct calls; the sampler runs its loop inside Run.
type ThreadBound interface {
	Run(fn func()) error
}

// Sleeper is implemented by backends that have work to do while the target
// runs between samples (ptrace must serve the signals its tracee receives).
// The sampler sleeps through it when it can.
type Sleeper interface {
	Sleep(d time.Duration)
}

// LazyStopper is an optional Backend fast path for the sampler. While lazy,
// Stop leaves asleep a thread that is blocked in the kernel exactly where its
// general registers were last read (it has not run since, so those are still
// its registers), and GetState(FlavorGeneral) returns them. LastStop says how
// many threads the last Stop stopped and how many it left asleep.
type LazyStopper interface {
	SetLazy(on bool) error
	LastStop() (stopped, parked int)
	// InSyscall reports whether the thread was blocked in a system call
	// (off CPU) when the last Stop looked at it.
	InSyscall(tid ThreadID) bool
}

// Realtimer is implemented by backends whose sampling thread can run at a
// real-time priority, so that the target's busy threads do not starve it.
type Realtimer interface {
	SetRealtime(on bool) error
}
