package kdpbridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// TargetOptions configure Dial.
type TargetOptions struct {
	ClientOptions
	// StayHalted leaves the kernel halted when the target is closed: the
	// socket is closed without DISCONNECT, and the next debugger's REATTACH
	// takes the stub's session over. The target then starts suspended once.
	// By default Close sends DISCONNECT, which lets XNU run again, as LLDB's
	// detach does; a KDP kernel cannot be halted again from the network.
	StayHalted bool
}

// Dial connects to the KDP stub at addr ("HOST" or "HOST:PORT", port 41139
// by default) and returns it as a tracer.Target. The kernel must be halted in
// its debugger (an NMI, a panic, a breakpoint, or DB_HALT at boot).
//
// The target has one thread per CPU in the HOSTINFO CPU mask, named cpuN,
// with ThreadID N+1 (thread ids start at 1, as LLDB's and GDB's do). XNU serves the registers of the CPU that entered the debugger
// whatever CPU is asked, so every thread shows that state. Suspend fails
// with an error wrapping tracer.ErrCannotHalt once the kernel runs: KDP
// cannot interrupt a running kernel; sample it with SampleByBreakpoint.
func Dial(ctx context.Context, addr string, opts *TargetOptions) (tracer.Target, error) {
	if opts == nil {
		opts = &TargetOptions{}
	}
	c, err := Connect(ctx, addr, opts.ClientOptions)
	if err != nil {
		return nil, err
	}
	b, err := NewBackend(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	if opts.StayHalted {
		return stayHalted{Target: tracer.NewSuspendedTarget(b), b: b}, nil
	}
	return tracer.NewTarget(b), nil
}

// stayHalted closes the connection without resuming the kernel.
type stayHalted struct {
	tracer.Target
	b *Backend
}

// Close closes the socket and leaves the kernel halted (or running, if it
// was resumed): no RESUMECPUS, no DISCONNECT.
func (t stayHalted) Close() error { return t.b.c.Close() }

// Backend is a tracer.Backend over a KDP Client.
type Backend struct {
	c    *Client
	info SessionInfo
	arch tracer.Arch

	mu      sync.Mutex
	running bool // resumed, no exception seen since
	last    *Exception
}

// NewBackend wraps a connected client. The CPU type must be x86_64 or arm64.
func NewBackend(c *Client) (*Backend, error) {
	info := c.Info()
	arch, err := archOf(info.CPUType)
	if err != nil {
		return nil, fmt.Errorf("kdp://%s: %w", c.Addr(), err)
	}
	return &Backend{c: c, info: info, arch: arch}, nil
}

// Client returns the underlying client.
func (b *Backend) Client() *Client { return b.c }

// Arch implements tracer.Backend.
func (b *Backend) Arch() tracer.Arch { return b.arch }

// Describe implements tracer.Backend: "kdp://HOST:PORT (Darwin Kernel
// Version ...)".
func (b *Backend) Describe() string {
	v := b.info.KernelVersion
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	if v == "" {
		return "kdp://" + b.c.Addr()
	}
	return fmt.Sprintf("kdp://%s (%s)", b.c.Addr(), v)
}

// LastException returns the stop the kernel reported last, if any.
func (b *Backend) LastException() (Exception, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		return Exception{}, false
	}
	return *b.last, true
}

func (b *Backend) isRunning() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// Threads implements tracer.Backend: one thread per CPU.
func (b *Backend) Threads() ([]tracer.Thread, error) {
	st := tracer.StateHalted
	if b.isRunning() {
		st = tracer.StateRunning
	}
	mask := b.info.CPUMask
	if mask == 0 {
		mask = 1
	}
	var out []tracer.Thread
	for m := mask; m != 0; m &= m - 1 {
		cpu := bits.TrailingZeros32(m)
		out = append(out, tracer.Thread{ID: cpuThread(uint32(cpu)), Name: fmt.Sprintf("cpu%d", cpu), State: st})
	}
	return out, nil
}

// errKernelRunning is wrapped by every request made while the kernel runs;
// it wraps tracer.ErrCannotHalt.
var errKernelRunning = fmt.Errorf("the kernel is running and KDP cannot interrupt it (it stops only at a breakpoint, an NMI or a panic; sample it through a breakpoint trigger instead: machtrace kdp sample --trigger FUNCTION): %w", tracer.ErrCannotHalt)

// Stop implements tracer.Backend. A halted kernel needs nothing; a running
// one cannot be stopped: the error wraps tracer.ErrCannotHalt.
func (b *Backend) Stop() error {
	if b.isRunning() {
		return fmt.Errorf("kdp://%s: %w", b.c.Addr(), errKernelRunning)
	}
	return nil
}

// Continue implements tracer.Backend: RESUMECPUS.
func (b *Backend) Continue() error {
	if err := b.c.Resume(context.Background()); err != nil {
		return fmt.Errorf("kdp://%s: resume: %w", b.c.Addr(), err)
	}
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	return nil
}

// WaitTrap waits for the running kernel to trap and returns the CPU the
// exception names (TrapWaiter, so a KDP target can itself be served over
// KDP). LastException has the details.
func (b *Backend) WaitTrap(ctx context.Context) (tracer.ThreadID, error) {
	e, err := b.waitException(ctx)
	if err != nil {
		return 0, err
	}
	if e.Terminated {
		return 0, fmt.Errorf("kdp://%s: terminated (code %d, exit %d): %w", b.c.Addr(), e.TermCode, e.ExitCode, tracer.ErrExited)
	}
	if len(e.Info) > 0 {
		return cpuThread(e.Info[0].CPU), nil
	}
	return cpuThread(0), nil
}

// cpuThread and threadCPU map CPU numbers to thread ids and back.
func cpuThread(cpu uint32) tracer.ThreadID { return tracer.ThreadID(cpu) + 1 }

func threadCPU(tid tracer.ThreadID) uint32 {
	if tid == 0 {
		return 0
	}
	return uint32(tid - 1)
}

func (b *Backend) waitException(ctx context.Context) (Exception, error) {
	e, err := b.c.WaitException(ctx)
	if err != nil {
		return Exception{}, err
	}
	b.mu.Lock()
	b.running = false
	b.last = &e
	b.mu.Unlock()
	return e, nil
}

func (b *Backend) checkHalted(op string) error {
	if b.isRunning() {
		return fmt.Errorf("kdp://%s: %s: %w", b.c.Addr(), op, errKernelRunning)
	}
	return nil
}

// GetState implements tracer.Backend with READREGS: the general registers
// (x86_THREAD_STATE64, ARM_THREAD_STATE64) and the FP/SIMD state
// (x86_FLOAT_STATE64, which XNU serves as zeros; ARM_NEON_STATE64, which XNU
// refuses).
func (b *Backend) GetState(tid tracer.ThreadID, flavor tracer.Flavor) (*tracer.Registers, error) {
	op := fmt.Sprintf("read %s registers of cpu %d", flavor, threadCPU(tid))
	if err := b.checkHalted(op); err != nil {
		return nil, err
	}
	fl, ok := kdpFlavor(b.arch, flavor)
	if !ok {
		return nil, fmt.Errorf("kdp://%s: %s: %w (KDP carries general and FP state only)", b.c.Addr(), op, errors.ErrUnsupported)
	}
	img, err := b.c.ReadRegs(context.Background(), threadCPU(tid), fl)
	if err != nil {
		return nil, fmt.Errorf("kdp://%s: %s: %w", b.c.Addr(), op, err)
	}
	return layoutFor(b.arch, fl).decode(img), nil
}

// SetState implements tracer.Backend with WRITEREGS.
func (b *Backend) SetState(tid tracer.ThreadID, regs *tracer.Registers) error {
	op := fmt.Sprintf("write %s registers of cpu %d", regs.Flavor(), threadCPU(tid))
	if err := b.checkHalted(op); err != nil {
		return err
	}
	fl, ok := kdpFlavor(b.arch, regs.Flavor())
	if !ok {
		return fmt.Errorf("kdp://%s: %s: %w", b.c.Addr(), op, errors.ErrUnsupported)
	}
	sl := layoutFor(b.arch, fl)
	img := sl.encode(regs)
	if regs.Layout() != sl.layout {
		// Registers from elsewhere: start from the kernel's own image so
		// registers regs lacks keep their values.
		cur, err := b.c.ReadRegs(context.Background(), threadCPU(tid), fl)
		if err != nil {
			return fmt.Errorf("kdp://%s: %s: %w", b.c.Addr(), op, err)
		}
		img = append(cur[:0:0], cur...)
		if len(img) < sl.size {
			img = append(img, make([]byte, sl.size-len(img))...)
		}
		for k := range sl.fields {
			f := &sl.fields[k]
			if i := f.index(regs); i >= 0 {
				copy(img[f.off:f.off+f.size], regs.BytesAt(i))
			}
		}
	}
	if err := b.c.WriteRegs(context.Background(), threadCPU(tid), fl, img); err != nil {
		return fmt.Errorf("kdp://%s: %s: %w", b.c.Addr(), op, err)
	}
	return nil
}

// ReadMemory implements tracer.Backend with READMEM64. Unreadable memory
// wraps tracer.ErrUnmapped.
func (b *Backend) ReadMemory(addr uint64, p []byte) (int, error) {
	if err := b.checkHalted("read memory"); err != nil {
		return 0, err
	}
	n, err := b.c.ReadMem(context.Background(), addr, p)
	if err != nil {
		if errors.Is(err, kdp.ErrBadAccess) {
			return n, fmt.Errorf("kdp://%s: read %d bytes at %#x: %w: %w", b.c.Addr(), len(p), addr+uint64(n), tracer.ErrUnmapped, err)
		}
		return n, fmt.Errorf("kdp://%s: read %d bytes at %#x: %w", b.c.Addr(), len(p), addr, err)
	}
	return n, nil
}

// WriteMemory implements tracer.Backend with WRITEMEM64.
func (b *Backend) WriteMemory(addr uint64, p []byte) (int, error) {
	if err := b.checkHalted("write memory"); err != nil {
		return 0, err
	}
	if err := b.c.WriteMem(context.Background(), addr, p); err != nil {
		if errors.Is(err, kdp.ErrBadAccess) {
			return 0, fmt.Errorf("kdp://%s: write %d bytes at %#x: %w: %w", b.c.Addr(), len(p), addr, tracer.ErrUnmapped, err)
		}
		return 0, fmt.Errorf("kdp://%s: write %d bytes at %#x: %w", b.c.Addr(), len(p), addr, err)
	}
	return len(p), nil
}

// Images implements tracer.Backend. KDP lists no images; when the kernel
// version names the kernel's text start (stext=0x...), the kernel image is
// reported with Start = Base = that address and no known end.
func (b *Backend) Images() ([]tracer.Image, error) {
	v := b.info.KernelVersion
	i := strings.Index(v, "stext=0x")
	if i < 0 {
		return nil, nil
	}
	var stext uint64
	if _, err := fmt.Sscanf(v[i+len("stext="):], "0x%x", &stext); err != nil || stext == 0 {
		return nil, nil
	}
	return []tracer.Image{{Path: "kernel", Start: stext, End: ^uint64(0), Base: stext, Perms: "r-x"}}, nil
}

// Detach implements tracer.Backend: DISCONNECT (XNU resumes the kernel) when
// halted, or just closing the socket while it runs, as LLDB does.
func (b *Backend) Detach() error {
	if b.isRunning() {
		return b.c.Close()
	}
	return b.c.Disconnect(context.Background())
}

// BreakpointSample is one hit of a sampling breakpoint.
type BreakpointSample struct {
	CPU  tracer.ThreadID
	Regs *tracer.Registers // general registers at the hit, PC rewound to the breakpoint
	// Stack is the PC, the return address the function entry still holds
	// ([rsp] on amd64, LR on arm64), then the return addresses found by
	// walking the frame pointers, innermost first.
	Stack []uint64
}

// SampleOptions configure SampleByBreakpoint.
type SampleOptions struct {
	// Count is how many hits to collect (at least 1).
	Count int
	// Timeout bounds the wait for each hit; 0 means 30s.
	Timeout time.Duration
	// MaxDepth bounds the frame-pointer walk; 0 means 64.
	MaxDepth int
}

// SampleByBreakpoint samples a KDP target through a trigger, since a running
// kernel cannot be stopped at will: it plants a breakpoint at addr (a kernel
// function's address), resumes the kernel, waits for the hit, reads the
// registers, rewinds the PC onto the breakpoint, removes it, single-steps
// over the original instruction, and repeats. fn receives each hit. The
// kernel must be halted on entry; it is halted on return, with no breakpoint
// left, unless a hit never came (then it runs: see the error).
func SampleByBreakpoint(ctx context.Context, t tracer.Target, addr uint64, opts SampleOptions, fn func(BreakpointSample) error) (int, error) {
	b, ok := t.Backend().(*Backend)
	if !ok {
		return 0, fmt.Errorf("sample by breakpoint: %s is not a KDP target: %w", t.Describe(), errors.ErrUnsupported)
	}
	if opts.Count < 1 {
		opts.Count = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 64
	}
	readFrame := func(a uint64) (uint64, uint64, bool) {
		var rec [16]byte
		if n, err := b.ReadMemory(a, rec[:]); err != nil || n < len(rec) {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(rec[:]), binary.LittleEndian.Uint64(rec[8:]), true
	}
	if err := b.checkHalted("sample by breakpoint"); err != nil {
		return 0, err
	}
	for n := 0; n < opts.Count; n++ {
		if err := b.c.SetBreakpoint(ctx, addr); err != nil {
			return n, fmt.Errorf("sample by breakpoint at %#x: set: %w", addr, err)
		}
		cpu, err := b.runUntilTrap(ctx, opts.Timeout)
		if err != nil {
			return n, fmt.Errorf("sample by breakpoint at %#x: no hit (the function may not run; the kernel keeps running): %w", addr, err)
		}
		regs, err := b.GetState(cpu, tracer.FlavorGeneral)
		if err != nil {
			return n, fmt.Errorf("sample by breakpoint at %#x: %w", addr, err)
		}
		if err := b.c.RemoveBreakpoint(ctx, addr); err != nil {
			return n, fmt.Errorf("sample by breakpoint at %#x: remove: %w", addr, err)
		}
		if b.arch == tracer.ArchAMD64 && regs.PC() == addr+1 {
			// int3 leaves RIP after itself; XNU does not rewind it.
			_ = regs.Set("rip", addr)
			if err := b.SetState(cpu, regs); err != nil {
				return n, fmt.Errorf("sample by breakpoint at %#x: rewind pc: %w", addr, err)
			}
		}
		if regs.PC() != addr {
			return n, fmt.Errorf("sample by breakpoint at %#x: the kernel stopped at %#x instead (another stop reason?)", addr, regs.PC())
		}
		stack := entryStack(b, regs, readFrame, opts.MaxDepth)
		if err := fn(BreakpointSample{CPU: cpu, Regs: regs, Stack: stack}); err != nil {
			return n + 1, err
		}
		if n+1 < opts.Count {
			if err := b.stepOver(ctx, cpu, opts.Timeout); err != nil {
				return n + 1, fmt.Errorf("sample by breakpoint at %#x: step over: %w", addr, err)
			}
		}
	}
	return opts.Count, nil
}

// entryStack unwinds from a function's first instruction: its return
// address is still at [rsp] (amd64) or in LR (arm64), and the frame pointer
// is the caller's, so the frame-pointer walk supplies the frames above.
func entryStack(b *Backend, regs *tracer.Registers, read tracer.FrameReader, maxDepth int) []uint64 {
	walk := tracer.UnwindFramePointers(regs, read, maxDepth, nil)
	var ret uint64
	if b.arch == tracer.ArchARM64 {
		ret = regs.LR()
	} else {
		var w [8]byte
		if n, err := b.ReadMemory(regs.SP(), w[:]); err == nil && n == len(w) {
			ret = binary.LittleEndian.Uint64(w[:])
		}
	}
	if ret == 0 {
		return walk
	}
	return append([]uint64{walk[0], ret}, walk[1:]...)
}

func (b *Backend) runUntilTrap(ctx context.Context, timeout time.Duration) (tracer.ThreadID, error) {
	if err := b.Continue(); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return b.WaitTrap(wctx)
}

// stepOver executes the instruction at the PC with the trace flag (x86) and
// waits for the step trap. arm64 XNU cannot single-step over KDP.
func (b *Backend) stepOver(ctx context.Context, cpu tracer.ThreadID, timeout time.Duration) error {
	if b.arch != tracer.ArchAMD64 {
		return fmt.Errorf("kdp://%s: %w (arm64 KDP has no single-step)", b.c.Addr(), errors.ErrUnsupported)
	}
	regs, err := b.GetState(cpu, tracer.FlavorGeneral)
	if err != nil {
		return err
	}
	fl, _ := regs.Get("rflags")
	_ = regs.Set("rflags", fl|x86TF)
	if err := b.SetState(cpu, regs); err != nil {
		return err
	}
	if _, err := b.runUntilTrap(ctx, timeout); err != nil {
		return err
	}
	regs, err = b.GetState(cpu, tracer.FlavorGeneral)
	if err != nil {
		return err
	}
	fl, _ = regs.Get("rflags")
	_ = regs.Set("rflags", fl&^x86TF)
	return b.SetState(cpu, regs)
}
