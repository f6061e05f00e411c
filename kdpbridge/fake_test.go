package kdpbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/machtrace/machtrace/tracer"
)

// fakeLayout names registers the way the Linux backend does (user_regs_struct
// names, rflags, fs_base), so the tests exercise the name mapping.
var fakeLayout = tracer.NewLayout(tracer.ArchAMD64, tracer.FlavorGeneral, func() []tracer.RegDesc {
	var d []tracer.RegDesc
	for _, n := range []string{"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
		"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss",
		"fs_base", "gs_base", "ds", "es", "fs", "gs"} {
		d = append(d, tracer.RegDesc{Name: n, Size: 8})
	}
	return d
}())

type fakeRegion struct {
	base uint64
	data []byte
}

type fakeThread struct {
	id      tracer.ThreadID
	regs    *tracer.Registers
	trapped bool // stopped in a trap, as a ptrace tracee after int3
	sig     int  // pending signal (SIGTRAP after a trap)
}

// fakeCPU is a toy amd64 process: while running, every thread "executes" one
// byte per tick, advancing its PC, until it meets 0xCC (it then traps with
// PC one past it, like int3) or unmapped memory (a fault).
type fakeCPU struct {
	mu      sync.Mutex
	regions []*fakeRegion
	threads []*fakeThread
	running bool
	stopRun chan struct{}
	runDone chan struct{}
	trapC   chan tracer.ThreadID
	exited  bool
	tick    time.Duration
	stops   int             // Stop calls, for tests
	hwbps   map[uint64]bool // breakpoints the "stub" plants, invisible in memory
}

func newFakeCPU() *fakeCPU {
	return &fakeCPU{trapC: make(chan tracer.ThreadID, 16), tick: 200 * time.Microsecond}
}

func (f *fakeCPU) mapRegion(base uint64, data []byte) {
	f.regions = append(f.regions, &fakeRegion{base, data})
}

func (f *fakeCPU) addThread(id tracer.ThreadID, rip, rsp uint64) *fakeThread {
	r := tracer.NewRegisters(fakeLayout)
	_ = r.Set("rip", rip)
	_ = r.Set("rsp", rsp)
	_ = r.Set("rbp", rsp+0x20)
	_ = r.Set("rflags", 0x246)
	_ = r.Set("cs", 0x33)
	_ = r.Set("ss", 0x2b)
	_ = r.Set("rax", 0x1111)
	_ = r.Set("fs_base", 0x7f0000001000)
	th := &fakeThread{id: id, regs: r}
	f.threads = append(f.threads, th)
	return th
}

func (f *fakeCPU) byteAt(a uint64) (byte, bool) {
	for _, r := range f.regions {
		if a >= r.base && a < r.base+uint64(len(r.data)) {
			return r.data[a-r.base], true
		}
	}
	return 0, false
}

func (f *fakeCPU) setByte(a uint64, c byte) bool {
	for _, r := range f.regions {
		if a >= r.base && a < r.base+uint64(len(r.data)) {
			r.data[a-r.base] = c
			return true
		}
	}
	return false
}

func (f *fakeCPU) thread(tid tracer.ThreadID) (*fakeThread, error) {
	for _, th := range f.threads {
		if th.id == tid {
			return th, nil
		}
	}
	return nil, fmt.Errorf("thread %d: %w", tid, tracer.ErrNoThread)
}

func (f *fakeCPU) Arch() tracer.Arch { return tracer.ArchAMD64 }
func (f *fakeCPU) Describe() string  { return "fake amd64 process" }

func (f *fakeCPU) Threads() ([]tracer.Thread, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exited {
		return nil, tracer.ErrExited
	}
	var out []tracer.Thread
	for _, th := range f.threads {
		st := tracer.StateRunning
		if !f.running || th.trapped {
			st = tracer.StateStopped
		}
		out = append(out, tracer.Thread{ID: th.id, State: st})
	}
	return out, nil
}

func (f *fakeCPU) Stop() error {
	f.mu.Lock()
	if !f.running {
		f.mu.Unlock()
		return nil
	}
	f.running = false
	f.stops++
	stop, done := f.stopRun, f.runDone
	f.mu.Unlock()
	close(stop)
	<-done
	return nil
}

func (f *fakeCPU) Continue() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exited {
		return tracer.ErrExited
	}
	if f.running {
		return errors.New("fake: already running")
	}
	for _, th := range f.threads {
		th.trapped, th.sig = false, 0
	}
	f.running = true
	f.stopRun, f.runDone = make(chan struct{}), make(chan struct{})
	go f.run(f.stopRun, f.runDone)
	return nil
}

func (f *fakeCPU) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(f.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		for _, th := range f.threads {
			if th.trapped {
				continue
			}
			pc := th.regs.PC()
			c, ok := f.byteAt(pc)
			switch {
			case f.hwbps[pc]:
				th.trapped, th.sig = true, 5
				select {
				case f.trapC <- th.id:
				default:
				}
				continue
			case !ok:
				th.trapped, th.sig = true, 11
			case c == 0xcc:
				_ = th.regs.Set("rip", pc+1)
				th.trapped, th.sig = true, 5
				select {
				case f.trapC <- th.id:
				default:
				}
			case c == 0xeb: // jmp rel8
				rel, _ := f.byteAt(pc + 1)
				_ = th.regs.Set("rip", pc+2+uint64(int64(int8(rel))))
			default:
				_ = th.regs.Set("rip", pc+1)
			}
			if fl, _ := th.regs.Get("rflags"); !th.trapped && fl&x86TF != 0 {
				// The trace flag: trap after one instruction.
				th.trapped, th.sig = true, 5
				select {
				case f.trapC <- th.id:
				default:
				}
			}
		}
		f.mu.Unlock()
	}
}

func (f *fakeCPU) GetState(tid tracer.ThreadID, flavor tracer.Flavor) (*tracer.Registers, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flavor != tracer.FlavorGeneral {
		return nil, fmt.Errorf("fake %s state: %w", flavor, errors.ErrUnsupported)
	}
	th, err := f.thread(tid)
	if err != nil {
		return nil, err
	}
	return th.regs.Clone(), nil
}

func (f *fakeCPU) SetState(tid tracer.ThreadID, regs *tracer.Registers) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	th, err := f.thread(tid)
	if err != nil {
		return err
	}
	th.regs = regs.Clone()
	return nil
}

func (f *fakeCPU) ReadMemory(addr uint64, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range p {
		c, ok := f.byteAt(addr + uint64(i))
		if !ok {
			return i, fmt.Errorf("read %#x: %w", addr+uint64(i), tracer.ErrUnmapped)
		}
		p[i] = c
	}
	return len(p), nil
}

func (f *fakeCPU) WriteMemory(addr uint64, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range p {
		if !f.setByte(addr+uint64(i), c) {
			return i, fmt.Errorf("write %#x: %w", addr+uint64(i), tracer.ErrUnmapped)
		}
	}
	return len(p), nil
}

func (f *fakeCPU) Images() ([]tracer.Image, error) { return nil, nil }
func (f *fakeCPU) Detach() error                   { return nil }

// ClearSignal discards a thread's pending trap signal (the Linux backend's
// method of the same name).
func (f *fakeCPU) ClearSignal(tid tracer.ThreadID) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	th, err := f.thread(tid)
	if err != nil {
		return 0, err
	}
	s := th.sig
	th.sig = 0
	return s, nil
}

// fakeWaiter adds TrapWaiter to the fake: the server then needs no polling.
type fakeWaiter struct{ *fakeCPU }

func (f fakeWaiter) WaitTrap(ctx context.Context) (tracer.ThreadID, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case tid := <-f.trapC:
		_ = f.Stop()
		_, _ = f.ClearSignal(tid)
		return tid, nil
	}
}

// fakePoller hides WaitTrap: the server must poll.
type fakePoller struct{ *fakeCPU }

// newLLDBFake builds the machine of lldb-kdp.md's captures: code at
// 0xffffffff81a17a00 (push rbp; mov rbp,rsp; nopl; hlt; pop rbp; ret; then
// nops), a stack page at 0xffffc90000003000, one thread stopped at
// 0xffffffff81a17a0b with rsp 0xffffc90000003e80.
func newLLDBFake() *fakeCPU {
	f := newFakeCPU()
	code := make([]byte, 0x4000)
	for i := range code {
		code[i] = 0x90
	}
	copy(code[0x3a00:], []byte{0x55, 0x48, 0x89, 0xe5, 0x0f, 0x1f, 0x80, 0, 0, 0, 0, 0xf4, 0x5d, 0xc3})
	code[0x3a40] = 0xcc // a trap of the program's own, for stops without a breakpoint
	// A loop at 0xffffffff81a17b00: four nops and jmp back.
	copy(code[0x3b00:], []byte{0x90, 0x90, 0x90, 0x90, 0xeb, 0xfa})
	f.mapRegion(0xffffffff81a14000, code)
	f.mapRegion(0xffffc90000003000, make([]byte, 0x2000))
	f.addThread(1, 0xffffffff81a17a0b, 0xffffc90000003e80)
	return f
}

// fakeStub plants breakpoints itself, like a GDB stub's Z0: BreakpointPlanter
// with TrapWaiter.
type fakeStub struct{ fakeWaiter }

func (f fakeStub) SetBreakpoint(addr uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hwbps == nil {
		f.hwbps = map[uint64]bool{}
	}
	f.hwbps[addr] = true
	return nil
}

func (f fakeStub) RemoveBreakpoint(addr uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.hwbps, addr)
	return nil
}
