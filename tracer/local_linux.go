package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/machtrace/machtrace/internal/ptrace"
)

// linuxBackend is the Linux ptrace backend.
type linuxBackend struct {
	p    *ptrace.Process
	name string

	namesMu sync.Mutex
	names   map[ThreadID]string // thread names read from /proc, by tid
}

func attachLocal(pid int) (Target, error) {
	p, err := ptrace.Attach(pid)
	if err != nil {
		return nil, linuxError(err)
	}
	return NewTarget(newLinuxBackend(p)), nil
}

func launchLocal(argv []string, opts LaunchOptions) (Target, error) {
	files, cleanup, err := launchFiles(opts)
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", argv[0], err)
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	p, err := ptrace.Launch(argv, env, opts.Dir, files)
	cleanup()
	if err != nil {
		return nil, linuxError(err)
	}
	return NewSuspendedTarget(newLinuxBackend(p)), nil
}

func newLinuxBackend(p *ptrace.Process) *linuxBackend {
	b := &linuxBackend{p: p, names: map[ThreadID]string{}}
	b.name = readProcString(p.PID(), 0, "comm")
	return b
}

// launchFiles turns the launch options' streams into files for the child. A
// stream that is not an *os.File is connected through a pipe.
func launchFiles(opts LaunchOptions) (ptrace.Files, func(), error) {
	var files ptrace.Files
	var childEnds []*os.File
	cleanup := func() {
		for _, f := range childEnds {
			f.Close()
		}
	}
	out := func(w io.Writer) (*os.File, error) {
		if w == nil {
			return nil, nil
		}
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		r, wf, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childEnds = append(childEnds, wf)
		go func() { io.Copy(w, r); r.Close() }()
		return wf, nil
	}
	var err error
	if opts.Stdin != nil {
		if f, ok := opts.Stdin.(*os.File); ok {
			files.Stdin = f
		} else {
			r, w, perr := os.Pipe()
			if perr != nil {
				return files, cleanup, perr
			}
			childEnds = append(childEnds, r)
			go func() { io.Copy(w, opts.Stdin); w.Close() }()
			files.Stdin = r
		}
	}
	if files.Stdout, err = out(opts.Stdout); err != nil {
		return files, cleanup, err
	}
	if files.Stderr, err = out(opts.Stderr); err != nil {
		return files, cleanup, err
	}
	return files, cleanup, nil
}

func (b *linuxBackend) Arch() Arch { return localArch }
func (b *linuxBackend) PID() int   { return b.p.PID() }

func (b *linuxBackend) Describe() string {
	if b.name != "" {
		return fmt.Sprintf("pid %d (%s)", b.p.PID(), b.name)
	}
	return fmt.Sprintf("pid %d", b.p.PID())
}

// ThreadIDs lists the traced threads without reading /proc: the sampler's
// per-sample call.
func (b *linuxBackend) ThreadIDs() ([]ThreadID, error) {
	tids, err := b.p.Threads()
	if err != nil {
		return nil, linuxError(err)
	}
	out := make([]ThreadID, len(tids))
	for i, tid := range tids {
		out[i] = ThreadID(tid)
	}
	return out, nil
}

func (b *linuxBackend) Threads() ([]Thread, error) {
	tids, err := b.ThreadIDs()
	if err != nil {
		return nil, err
	}
	out := make([]Thread, 0, len(tids))
	for _, tid := range tids {
		name := readProcString(b.p.PID(), int(tid), "comm")
		b.namesMu.Lock()
		if name != "" {
			b.names[tid] = name
		} else {
			name = b.names[tid]
		}
		b.namesMu.Unlock()
		out = append(out, Thread{ID: tid, Name: name, State: readTaskState(b.p.PID(), int(tid))})
	}
	return out, nil
}

func (b *linuxBackend) Stop() error     { return linuxError(b.p.Stop()) }
func (b *linuxBackend) Continue() error { return linuxError(b.p.Continue()) }

// SetLazy turns on the sampling fast path (see LazyStopper).
func (b *linuxBackend) SetLazy(on bool) error { return linuxError(b.p.SetLazy(on)) }

// LastStop reports the threads stopped and left asleep by the last Stop.
func (b *linuxBackend) LastStop() (stopped, parked int) { return b.p.LastStop() }

// InSyscall reports whether the thread was blocked in a system call at the
// last lazy Stop.
func (b *linuxBackend) InSyscall(tid ThreadID) bool { return b.p.InSyscall(int(tid)) }

// SetRealtime runs the ptrace thread at SCHED_FIFO priority (see Realtimer).
func (b *linuxBackend) SetRealtime(on bool) error { return linuxError(b.p.SetRealtime(on)) }

// Sleep waits while serving the target's own ptrace-stops.
func (b *linuxBackend) Sleep(d time.Duration) { b.p.Sleep(d) }

// Run executes fn on the ptrace thread (see ptrace.Process.Run).
func (b *linuxBackend) Run(fn func()) error { return linuxError(b.p.Run(fn)) }

func (b *linuxBackend) GetState(tid ThreadID, flavor Flavor) (*Registers, error) {
	switch flavor {
	case FlavorGeneral:
		var buf [27 * 8]byte // large enough for both arches' NT_PRSTATUS
		n, err := b.p.GetRegSet(int(tid), linuxRegsetGeneral, buf[:])
		if err != nil {
			return nil, linuxError(err)
		}
		return linuxGeneral.Decode(buf[:n])
	case FlavorFloat:
		if xsaveYMMOffset > 0 {
			if r, err := b.getAVX(tid); err == nil {
				return r, nil
			}
		}
		buf := make([]byte, linuxFloat.Size)
		n, err := b.p.GetRegSet(int(tid), linuxRegsetFloat, buf)
		if err != nil {
			return nil, linuxError(err)
		}
		return linuxFloat.Decode(buf[:n])
	case FlavorDebug:
		if linuxDebug == nil {
			return nil, fmt.Errorf("%s state of thread %d: %w on linux/%s", flavor, tid, errors.ErrUnsupported, localArch)
		}
		r := NewRegisters(linuxDebug)
		for i := 0; i < r.Len(); i++ {
			v, err := b.p.PeekUser(int(tid), uintptr(linuxDebugOffset+8*i))
			if err != nil {
				return nil, linuxError(err)
			}
			r.SetAt(i, v)
		}
		return r, nil
	}
	return nil, fmt.Errorf("%s state of thread %d: %w by the Linux ptrace backend", flavor, tid, errors.ErrUnsupported)
}

// linuxAVX is the FXSAVE image plus the upper halves of YMM0-15, read from
// the XSAVE area (NT_X86_XSTATE).
var linuxAVX = func() *StructLayout {
	if xsaveYMMOffset < 0 {
		return nil
	}
	fields := append(append([]Field(nil), linuxFloat.Fields...), seqFields("ymmh", 16, xsaveYMMOffset, 16)...)
	return NewStructLayout(localArch, FlavorFloat, xsaveYMMOffset+16*16, fields)
}()

const xstateBVOffset = 512 // XSTATE_BV in the XSAVE header

func (b *linuxBackend) readXState(tid ThreadID) ([]byte, error) {
	buf := make([]byte, 16<<10)
	n, err := b.p.GetRegSet(int(tid), unix.NT_X86_XSTATE, buf)
	if err != nil {
		return nil, err
	}
	if n < linuxAVX.Size || !hasAVX(buf[:n]) {
		return nil, errors.New("no AVX state")
	}
	return buf[:n], nil
}

// hasAVX reports whether the XSAVE image's feature mask enables AVX. Linux
// stores the mask (XCR0) in the FXSAVE area's software-reserved bytes: the
// u64 xfeatures of struct _fpx_sw_bytes at offset 464+8.
func hasAVX(x []byte) bool { return len(x) > 472 && x[472]&4 != 0 }

func (b *linuxBackend) getAVX(tid ThreadID) (*Registers, error) {
	x, err := b.readXState(tid)
	if err != nil {
		return nil, err
	}
	if x[xstateBVOffset]&4 == 0 {
		clear(x[linuxAVX.Size-256 : linuxAVX.Size]) // initial state: all zero
	}
	return linuxAVX.Decode(x)
}

func (b *linuxBackend) SetState(tid ThreadID, regs *Registers) error {
	var sl *StructLayout
	var nt int
	switch regs.Layout() {
	case linuxGeneral.Layout:
		sl, nt = linuxGeneral, linuxRegsetGeneral
	case linuxFloat.Layout:
		sl, nt = linuxFloat, linuxRegsetFloat
	case linuxDebug:
		for i := 0; i < regs.Len(); i++ {
			if i == 4 || i == 5 {
				continue // dr4 and dr5 are reserved
			}
			if err := b.p.PokeUser(int(tid), uintptr(linuxDebugOffset+8*i), regs.At(i)); err != nil {
				return linuxError(err)
			}
		}
		return nil
	default:
		if linuxAVX != nil && regs.Layout() == linuxAVX.Layout {
			x, err := b.readXState(tid)
			if err != nil {
				return linuxError(err)
			}
			if err := linuxAVX.Encode(regs, x); err != nil {
				return err
			}
			x[xstateBVOffset] |= 2 | 4 // SSE and AVX state now explicit
			return linuxError(b.p.SetRegSet(int(tid), unix.NT_X86_XSTATE, x))
		}
		return fmt.Errorf("set %s state of thread %d: registers were not read from this target", regs.Flavor(), tid)
	}
	buf := make([]byte, sl.Size)
	if _, err := b.p.GetRegSet(int(tid), nt, buf); err != nil {
		return linuxError(err)
	}
	if err := sl.Encode(regs, buf); err != nil {
		return err
	}
	return linuxError(b.p.SetRegSet(int(tid), nt, buf))
}

func (b *linuxBackend) ReadMemory(addr uint64, p []byte) (int, error) {
	n, err := b.p.ReadMemory(addr, p)
	return n, linuxError(err)
}

func (b *linuxBackend) WriteMemory(addr uint64, p []byte) (int, error) {
	n, err := b.p.WriteMemory(addr, p)
	return n, linuxError(err)
}

func (b *linuxBackend) Images() ([]Image, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", b.p.PID()))
	if err != nil {
		return nil, fmt.Errorf("images of %s: %w", b.Describe(), ErrExited)
	}
	defer f.Close()
	return ParseProcMaps(f)
}

func (b *linuxBackend) Detach() error { return linuxError(b.p.Detach()) }

// Wait waits for a launched process to exit after Detach and returns its exit
// code (128+signal when a signal killed it).
func (b *linuxBackend) Wait() (int, error) {
	ws, err := b.p.Wait()
	if err != nil {
		return -1, err
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// linuxError makes ptrace's errors match the tracer's sentinels as well.
func linuxError(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{ptrace.ErrExited, ErrExited},
		{ptrace.ErrNoThread, ErrNoThread},
		{ptrace.ErrNoProcess, ErrNoProcess},
		{ptrace.ErrPermission, ErrPermission},
		{ptrace.ErrUnmapped, ErrUnmapped},
		{ptrace.ErrDetached, ErrClosed},
	} {
		if errors.Is(err, m.from) {
			return &sentinelError{err: err, sentinel: m.to}
		}
	}
	return err
}

// sentinelError adds a tracer sentinel to a backend error without changing
// its message.
type sentinelError struct {
	err      error
	sentinel error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.sentinel} }

func readProcString(pid, tid int, file string) string {
	path := fmt.Sprintf("/proc/%d/%s", pid, file)
	if tid != 0 {
		path = fmt.Sprintf("/proc/%d/task/%d/%s", pid, tid, file)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

// readTaskState maps the state letter of /proc/PID/task/TID/stat.
func readTaskState(pid, tid int) RunState {
	s := readProcString(pid, tid, "stat")
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return StateUnknown
	}
	switch s[i+2] {
	case 'R':
		return StateRunning
	case 'S', 'I':
		return StateSleeping
	case 'D':
		return StateBlocked
	case 'T', 't':
		return StateStopped
	case 'Z', 'X':
		return StateZombie
	}
	return StateUnknown
}
