package ptrace

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Errors returned by this package. They are wrapped with context; match them
// with errors.Is.
var (
	ErrExited     = errors.New("process exited")
	ErrNoThread   = errors.New("no such thread")
	ErrNoProcess  = errors.New("no such process")
	ErrPermission = errors.New("permission denied")
	ErrRunning    = errors.New("thread is running (suspend the target first)")
	ErrDetached   = errors.New("process already detached")
	ErrUnmapped   = errors.New("address not mapped")
)

// thread is the tracer's view of one traced thread.
type thread struct {
	tid        int
	stopped    bool // in a ptrace-stop we have collected
	groupStop  bool // the stop is a job-control group-stop: resume with PTRACE_LISTEN
	pendingSig int  // signal to deliver when the thread is continued
	// zombie: the leader exited before its other threads; it reports its
	// exit only when the group is empty, and cannot be stopped meanwhile.
	zombie bool

	// The sampling fast path (SetLazy): a thread blocked in a system call
	// where its registers were last captured is left where it is.
	parked     bool   // left running (blocked) by this stop
	blockedAt  string // its /proc syscall line read just before this stop (parking candidates only)
	captured   string // its /proc syscall line when cachedRegs were read, if it was in a system call
	cachedRegs []byte // NT_PRSTATUS as last read
}

// Process is a traced process. Its methods are safe for concurrent use: each
// ptrace request is executed on the process's own locked OS thread.
type Process struct {
	pid   int
	owner int // tid of the OS thread that owns the ptrace relationship

	reqs chan func()
	done chan struct{}

	// Fields below are touched only on the owner thread.
	threads  map[int]*thread
	detached bool
	exited   bool
	status   unix.WaitStatus // the leader's exit status, once exited
	child    bool            // launched by us: we are its real parent
	reaped   bool            // its exit status was collected by wait4

	sigchld <-chan os.Signal // SIGCHLD notifications, read on the owner thread

	lazy        bool      // the sampling fast path is on (SetLazy)
	lastParked  int       // threads left blocked by the last stop
	lastStopped int       // threads stopped by the last stop
	syscallBuf  [256]byte // for reading /proc/PID/task/TID/syscall

	memOnce sync.Once
	mem     *os.File // /proc/PID/mem, the fallback for process_vm_readv/writev
	memErr  error

	waitMu sync.Mutex // serialises Wait
}

// PID returns the process id (the thread-group leader's tid).
func (p *Process) PID() int { return p.pid }

// start launches the owner goroutine, runs init on it and returns init's error.
func start(init func(p *Process) error) (*Process, error) {
	p := &Process{reqs: make(chan func()), done: make(chan struct{}), threads: map[int]*thread{}}
	errc := make(chan error, 1)
	go func() {
		// The goroutine never unlocks: its OS thread holds the ptrace
		// relationship and must not serve other goroutines.
		runtime.LockOSThread()
		p.owner = unix.Gettid()
		// Sleeps of microseconds must not be stretched by the default
		// 50 us timer slack.
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		err := init(p)
		errc <- err
		if err != nil {
			close(p.done)
			return
		}
		// While the target runs, its threads still enter ptrace-stops of
		// their own (every signal, clones, group-stops). Each one sends us
		// SIGCHLD; serve them at once so the target never waits on us.
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, unix.SIGCHLD)
		defer signal.Stop(sigc)
		p.sigchld = sigc
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case f := <-p.reqs:
				f()
			case <-sigc:
				p.serveEvents()
			case <-tick.C:
				p.serveEvents()
			case <-p.done:
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return p, nil
}

// do runs f on the owner thread.
func (p *Process) do(f func() error) error {
	if unix.Gettid() == p.owner {
		return f()
	}
	errc := make(chan error, 1)
	select {
	case p.reqs <- func() { errc <- f() }:
		return <-errc
	case <-p.done:
		return fmt.Errorf("pid %d: %w", p.pid, ErrDetached)
	}
}

// Run executes fn on the owner OS thread, so that the Process calls fn makes
// are direct system calls without a goroutine hand-off. The sampler runs its
// whole loop this way.
func (p *Process) Run(fn func()) error {
	return p.do(func() error { fn(); return nil })
}

func ptrace(req int, tid int, addr, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

const seizeOptions = unix.PTRACE_O_TRACECLONE

// Attach seizes every thread of process pid. The threads keep running.
func Attach(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("attach %d: %w", pid, ErrNoProcess)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task", pid)); err != nil {
		return nil, fmt.Errorf("attach %d: %w", pid, ErrNoProcess)
	}
	return start(func(p *Process) error {
		p.pid = pid
		// Threads may be created while we seize: list until a pass finds no
		// thread we have not seized yet.
		for pass := 0; ; pass++ {
			tids, err := listTasks(pid)
			if err != nil {
				p.detachAll()
				return fmt.Errorf("attach %d: %w", pid, ErrNoProcess)
			}
			added := 0
			for _, tid := range tids {
				if _, ok := p.threads[tid]; ok {
					continue
				}
				if err := ptrace(unix.PTRACE_SEIZE, tid, 0, seizeOptions); err != nil {
					if errors.Is(err, unix.ESRCH) && tid != pid {
						continue // the thread exited meanwhile
					}
					p.detachAll()
					return attachError(pid, err)
				}
				p.threads[tid] = &thread{tid: tid}
				added++
			}
			if added == 0 {
				return nil
			}
			if pass > 1000 {
				p.detachAll()
				return fmt.Errorf("attach %d: threads are created faster than they can be seized", pid)
			}
		}
	})
}

// Files are the standard streams of a launched process.
type Files struct {
	Stdin, Stdout, Stderr *os.File // nil means /dev/null
}

// Launch starts argv with env in dir, stopped before the first instruction of
// the new program (after execve, before the dynamic loader runs). The process
// is seized and stopped: call Continue to let it run.
func Launch(argv, env []string, dir string, files Files) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("launch: empty command")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", argv[0], err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	fd := func(f *os.File) uintptr {
		if f == nil {
			return devnull.Fd()
		}
		return f.Fd()
	}
	return start(func(p *Process) error {
		attr := &syscall.ProcAttr{
			Dir:   dir,
			Env:   env,
			Files: []uintptr{fd(files.Stdin), fd(files.Stdout), fd(files.Stderr)},
			Sys:   &syscall.SysProcAttr{Ptrace: true},
		}
		pid, err := syscall.ForkExec(path, argv, attr)
		if err != nil {
			return fmt.Errorf("launch %s: %w", argv[0], err)
		}
		p.pid, p.child = pid, true
		// 1. PTRACE_TRACEME makes execve stop the child with SIGTRAP.
		var ws unix.WaitStatus
		if err := wait4(pid, &ws, unix.WALL); err != nil {
			return fmt.Errorf("launch %s: wait for exec stop: %w", argv[0], err)
		}
		if !ws.Stopped() {
			p.reaped = true
			return fmt.Errorf("launch %s: the program ended before its first instruction (status %v)", argv[0], ws)
		}
		// 2. A TRACEME tracee cannot be interrupted; re-seize it. Detach
		// with SIGSTOP so it waits in a group-stop, never running an
		// instruction, then seize it and lift the group-stop with SIGCONT.
		if err := ptrace(unix.PTRACE_DETACH, pid, 0, uintptr(unix.SIGSTOP)); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("launch %s: detach from exec stop: %w", argv[0], err)
		}
		if err := wait4(pid, &ws, unix.WUNTRACED); err != nil || !ws.Stopped() {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("launch %s: wait for SIGSTOP (status %v): %v", argv[0], ws, err)
		}
		if err := ptrace(unix.PTRACE_SEIZE, pid, 0, seizeOptions); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("launch %s: seize: %w", argv[0], err)
		}
		if err := wait4(pid, &ws, unix.WALL); err != nil || !ws.Stopped() {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("launch %s: wait for seize stop (status %v): %v", argv[0], ws, err)
		}
		if err := unix.Kill(pid, unix.SIGCONT); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("launch %s: SIGCONT: %w", argv[0], err)
		}
		p.threads[pid] = &thread{tid: pid, stopped: true}
		return nil
	})
}

func lookPath(file string) (string, error) {
	if slices.Contains([]byte(file), '/') {
		return file, nil
	}
	for _, dir := range splitPath(os.Getenv("PATH")) {
		path := dir + "/" + file
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%q not found in $PATH", file)
}

func splitPath(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			dir := s[start:i]
			if dir == "" {
				dir = "."
			}
			out = append(out, dir)
			start = i + 1
		}
	}
	return out
}

// wait4 waits for tid, retrying on EINTR.
func wait4(tid int, ws *unix.WaitStatus, options int) error {
	for {
		_, err := unix.Wait4(tid, ws, options, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// Threads returns the tids of the traced threads, leader first, then ascending.
func (p *Process) Threads() ([]int, error) {
	var tids []int
	err := p.do(func() error {
		if p.detached {
			return fmt.Errorf("pid %d: %w", p.pid, ErrDetached)
		}
		if p.exited {
			return p.exitedError()
		}
		tids = p.tidsLocked()
		return nil
	})
	return tids, err
}

func (p *Process) tidsLocked() []int {
	tids := make([]int, 0, len(p.threads))
	for tid, t := range p.threads {
		if !t.zombie {
			tids = append(tids, tid)
		}
	}
	slices.SortFunc(tids, func(a, b int) int {
		switch {
		case a == p.pid:
			return -1
		case b == p.pid:
			return 1
		}
		return a - b
	})
	return tids
}

// Stop interrupts every running thread and waits until all of them are in a
// ptrace-stop. Threads that exit meanwhile are dropped; if the whole process
// is gone, Stop returns an error wrapping ErrExited.
func (p *Process) Stop() error {
	return p.do(p.stopLocked)
}

func (p *Process) stopLocked() error {
	if p.detached {
		return fmt.Errorf("pid %d: %w", p.pid, ErrDetached)
	}
	if p.exited {
		return p.exitedError()
	}
	pending := make([]int, 0, len(p.threads))
	p.lastParked = 0
	for tid, t := range p.threads {
		if t.stopped {
			continue
		}
		if t.zombie {
			if len(p.threads) == 1 {
				// The group is empty now: collect the leader's exit.
				pending = append(pending, tid)
			}
			continue
		}
		t.blockedAt = ""
		if p.lazy && t.captured != "" {
			// Only a thread last seen in a system call can be parked;
			// busy threads cost no /proc read.
			t.blockedAt = p.readSyscall(tid)
			if t.blockedAt == t.captured {
				// Blocked in the same call, with the same arguments, SP
				// and PC as when its registers were read: it has not run
				// user code since. Leave it asleep.
				t.parked = true
				p.lastParked++
				continue
			}
		}
		// ESRCH means the thread is exiting; its exit is collected below.
		_ = ptrace(unix.PTRACE_INTERRUPT, tid, 0, 0)
		pending = append(pending, tid)
	}
	p.lastStopped = len(pending)
	if err := p.collect(pending); err != nil {
		return err
	}
	if len(p.threads) == 0 {
		p.exited = true
	}
	if p.exited {
		return p.exitedError()
	}
	return nil
}

// collect waits for each tid in pending to report a stop or its exit. New
// threads announced by clone events are added and waited for as well.
func (p *Process) collect(pending []int) error {
	spins := 0
	lastCheck := time.Now()
	if p.sigchld != nil {
		// Forget notifications of stops collected before this call.
		select {
		case <-p.sigchld:
		default:
		}
	}
	// Threads other than the leader: block in wait4 on each, as a debugger
	// does, so the tracer sleeps until the kernel wakes it. Such a thread
	// always reports, its stop or its exit (a traced thread's exit goes to
	// its tracer at once), and a tid that vanished (another thread's exec
	// took it over) makes wait4 fail with ECHILD. Only the leader can stay
	// silent (a zombie while other threads live): it alone is polled below.
	var leader []int
	for i := 0; i < len(pending); i++ {
		tid := pending[i]
		if tid == p.pid {
			leader = append(leader, tid)
			continue
		}
		var ws unix.WaitStatus
		err := wait4(tid, &ws, unix.WALL)
		switch {
		case err == unix.ECHILD:
			delete(p.threads, tid)
		case err != nil:
			return fmt.Errorf("wait for thread %d: %w", tid, err)
		default:
			if more := p.handleStatus(tid, ws); more != 0 {
				pending = append(pending, more)
			}
		}
	}
	pending = leader
	for len(pending) > 0 {
		progressed := false
		for i := 0; i < len(pending); i++ {
			tid := pending[i]
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.ECHILD:
				// Not (or no longer) our tracee: it vanished (exec by
				// another thread) or was reaped.
				delete(p.threads, tid)
			case err != nil:
				return fmt.Errorf("wait for thread %d: %w", tid, err)
			case wpid == 0:
				continue // not stopped yet
			default:
				if more := p.handleStatus(tid, ws); more != 0 {
					pending = append(pending, more)
				}
			}
			pending = append(pending[:i], pending[i+1:]...)
			i--
			progressed = true
		}
		if len(pending) == 0 {
			break
		}
		if progressed {
			spins = 0
			continue
		}
		// Sleep a little, longer each time (5 us to 200 us): the leader
		// needs a CPU to reach its stop, and yielding would hand ours to
		// any other process. A raw nanosleep, not a runtime timer: timers
		// need other (possibly starved) threads to fire.
		spins++
		nanosleep(time.Duration(min(5<<min(spins/8, 6), 200)) * time.Microsecond)
		if time.Since(lastCheck) > 50*time.Millisecond {
			lastCheck = time.Now()
			// A thread that vanished without a report (it was replaced by an
			// exec in another thread) would be waited for forever.
			// So would a leader that exited before its other threads: it
			// is a zombie that reports nothing until the group is empty.
			pending = slices.DeleteFunc(pending, func(tid int) bool {
				switch taskState(p.pid, tid) {
				case taskAlive:
					return false
				case taskZombie:
					// A zombie tracee is ours to reap: a non-leader is
					// reportable now, and reaping it is what lets the
					// leader report in turn.
					var ws unix.WaitStatus
					if wpid, err := unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil); err == nil && wpid == tid {
						if more := p.handleStatus(tid, ws); more != 0 {
							pending = append(pending, more)
						}
						return true
					}
					if t := p.threads[tid]; t != nil && tid == p.pid {
						t.zombie = true
						return true
					}
				}
				delete(p.threads, tid)
				return true
			})
		}
	}
	return nil
}

// handleStatus records what wait4 reported for tid. It returns the tid of a
// new thread announced by a clone event (0 otherwise).
func (p *Process) handleStatus(tid int, ws unix.WaitStatus) int {
	switch {
	case ws.Exited() || ws.Signaled():
		delete(p.threads, tid)
		if tid == p.pid {
			// The leader is reported last: the whole process is gone.
			p.exited, p.status = true, ws
			if p.child {
				p.reaped = true
			}
			clear(p.threads)
		}
		return 0
	case !ws.Stopped():
		return 0
	}
	t, ok := p.threads[tid]
	if !ok {
		t = &thread{tid: tid}
		p.threads[tid] = t
	}
	t.stopped = true
	sig := int(ws.StopSignal())
	// The ptrace event is in bits 16-23 of the status. (x/sys's TrapCause
	// reports it only for SIGTRAP stops, and would hide both a group-stop's
	// EVENT_STOP and every signal-delivery-stop other than SIGTRAP.)
	switch event := int(uint32(ws)>>16) & 0xff; event {
	case unix.PTRACE_EVENT_STOP:
		switch unix.Signal(sig) {
		case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
			t.groupStop = true
		default:
			t.groupStop = false
		}
	case unix.PTRACE_EVENT_CLONE:
		msg, err := unix.PtraceGetEventMsg(tid)
		if err == nil && msg != 0 {
			ntid := int(msg)
			if _, known := p.threads[ntid]; !known {
				p.threads[ntid] = &thread{tid: ntid}
				return ntid
			}
		}
	case unix.PTRACE_EVENT_EXEC:
		// Every other thread is gone; the leader's tid now runs the new
		// program.
		for other := range p.threads {
			if other != p.pid {
				delete(p.threads, other)
			}
		}
		if tid != p.pid {
			delete(p.threads, tid)
			p.threads[p.pid] = &thread{tid: p.pid, stopped: true}
		}
	case 0:
		// A signal-delivery-stop: deliver the signal when resuming, so
		// the target sees exactly what it would have seen untraced.
		t.pendingSig = sig
		t.groupStop = false
	}
	return 0
}

// Continue resumes every stopped thread, delivering any signal that arrived
// while it was stopped. Group-stopped threads stay in their job-control stop
// (PTRACE_LISTEN) until a SIGCONT arrives.
func (p *Process) Continue() error {
	return p.do(p.continueLocked)
}

func (p *Process) continueLocked() error {
	if p.detached {
		return fmt.Errorf("pid %d: %w", p.pid, ErrDetached)
	}
	if p.exited {
		return p.exitedError()
	}
	for _, t := range p.threads {
		t.parked = false
		if t.stopped {
			if err := p.resume(t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Process) stoppedThread(tid int) (*thread, error) {
	if p.detached {
		return nil, fmt.Errorf("pid %d: %w", p.pid, ErrDetached)
	}
	if p.exited {
		return nil, p.exitedError()
	}
	t, ok := p.threads[tid]
	if !ok || t.zombie {
		return nil, fmt.Errorf("thread %d: %w", tid, ErrNoThread)
	}
	if !t.stopped {
		return nil, fmt.Errorf("thread %d: %w", tid, ErrRunning)
	}
	return t, nil
}

// GetRegSet reads the register set nt (unix.NT_PRSTATUS, NT_PRFPREG,
// NT_X86_XSTATE, ...) of a stopped thread into buf and returns its length.
func (p *Process) GetRegSet(tid int, nt int, buf []byte) (int, error) {
	var n int
	err := p.do(func() error {
		if t := p.threads[tid]; t != nil && t.parked && nt == unix.NT_PRSTATUS {
			n = copy(buf, t.cachedRegs)
			return nil
		}
		t, err := p.stoppedThread(tid)
		if err != nil {
			return err
		}
		iov := unix.Iovec{Base: &buf[0]}
		iov.SetLen(len(buf))
		if err := ptrace(unix.PTRACE_GETREGSET, tid, uintptr(nt), uintptr(unsafe.Pointer(&iov))); err != nil {
			return p.threadError("read registers of", tid, err)
		}
		n = int(iov.Len)
		if p.lazy && nt == unix.NT_PRSTATUS {
			t.cachedRegs = append(t.cachedRegs[:0], buf[:n]...)
			// Park it next time only if it stopped where it was seen
			// blocked (it did not run between that look and the stop).
			// Remember where it is if it is in a system call: then
			// the next stop may find it blocked there still. The
			// registers say whether it is (orig_rax on x86), sparing
			// busy threads the /proc read.
			t.captured = ""
			if maybeInSyscall(buf[:n]) {
				if line := p.readSyscall(tid); line != "" && !strings.HasPrefix(line, "-1 ") {
					t.captured = line
				}
			}
		}
		return nil
	})
	return n, err
}

// SetRegSet writes the register set nt of a stopped thread.
func (p *Process) SetRegSet(tid int, nt int, buf []byte) error {
	return p.do(func() error {
		if _, err := p.stoppedThread(tid); err != nil {
			return err
		}
		iov := unix.Iovec{Base: &buf[0]}
		iov.SetLen(len(buf))
		if err := ptrace(unix.PTRACE_SETREGSET, tid, uintptr(nt), uintptr(unsafe.Pointer(&iov))); err != nil {
			return p.threadError("write registers of", tid, err)
		}
		return nil
	})
}

func (p *Process) threadError(op string, tid int, err error) error {
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("%s thread %d: %w", op, tid, ErrNoThread)
	}
	return fmt.Errorf("%s thread %d: %w", op, tid, os.NewSyscallError("ptrace", err))
}

// ReadMemory reads target memory at addr into buf with process_vm_readv,
// falling back to /proc/PID/mem. It returns how many bytes were read; a read
// that stops at an unmapped page returns the bytes before it and an error
// wrapping ErrUnmapped.
func (p *Process) ReadMemory(addr uint64, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(p.pid, local, remote, 0)
	switch {
	case err == nil && n == len(buf):
		return n, nil
	case err == nil:
		// Short read: the next page is unmapped; say so.
		return n, fmt.Errorf("read %#x: %w", addr+uint64(n), ErrUnmapped)
	case errors.Is(err, unix.EFAULT):
		return 0, fmt.Errorf("read %#x: %w", addr, ErrUnmapped)
	case errors.Is(err, unix.ESRCH):
		return 0, fmt.Errorf("read %#x: pid %d: %w", addr, p.pid, ErrExited)
	}
	// EPERM or ENOSYS: try /proc/PID/mem.
	return p.memFileIO(addr, buf, false)
}

// WriteMemory writes buf into target memory. process_vm_writev cannot write
// read-only pages (program text), so those writes go through /proc/PID/mem,
// which the kernel lets a tracer write like a debugger's poke.
func (p *Process) WriteMemory(addr uint64, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMWritev(p.pid, local, remote, 0)
	if err == nil && n == len(buf) {
		return n, nil
	}
	if errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("write %#x: pid %d: %w", addr, p.pid, ErrExited)
	}
	return p.memFileIO(addr, buf, true)
}

func (p *Process) memFileIO(addr uint64, buf []byte, write bool) (int, error) {
	p.memOnce.Do(func() {
		p.mem, p.memErr = os.OpenFile("/proc/"+strconv.Itoa(p.pid)+"/mem", os.O_RDWR, 0)
	})
	if p.memErr != nil {
		return 0, fmt.Errorf("open target memory: %w", p.memErr)
	}
	var n int
	var err error
	if write {
		n, err = p.mem.WriteAt(buf, int64(addr))
	} else {
		n, err = p.mem.ReadAt(buf, int64(addr))
	}
	if err != nil {
		op := "read"
		if write {
			op = "write"
		}
		if errors.Is(err, unix.EIO) || errors.Is(err, unix.EFAULT) {
			return n, fmt.Errorf("%s %#x: %w", op, addr+uint64(n), ErrUnmapped)
		}
		return n, fmt.Errorf("%s %#x: %w", op, addr, err)
	}
	return n, nil
}

// Detach stops the process (if it runs), detaches from every thread and leaves
// the process running, delivering any signal it was about to receive.
func (p *Process) Detach() error {
	err := p.do(func() error {
		if p.detached {
			return nil
		}
		var errs []error
		if !p.exited {
			if err := p.stopLocked(); err != nil && !errors.Is(err, ErrExited) {
				errs = append(errs, err)
			}
		}
		// Threads announced late (a clone racing the stop) are found in /proc.
		if !p.exited {
			if tids, err := listTasks(p.pid); err == nil {
				var late []int
				for _, tid := range tids {
					if _, ok := p.threads[tid]; !ok {
						p.threads[tid] = &thread{tid: tid}
						late = append(late, tid)
					}
				}
				if len(late) > 0 {
					// These are auto-attached and will report their first stop.
					_ = p.collect(late)
				}
			}
		}
		errs = append(errs, p.detachAll())
		reapTracedZombies(p.pid)
		p.detached = true
		return errors.Join(errs...)
	})
	if err == nil || !errors.Is(err, ErrDetached) {
		p.closeOwner()
	}
	return err
}

// detachAll detaches every thread. Runs on the owner thread.
func (p *Process) detachAll() error {
	// PTRACE_DETACH needs a ptrace-stop: stop what still runs (threads
	// seized by an attach that failed half way).
	var running []int
	for tid, t := range p.threads {
		if !t.stopped && !t.zombie {
			_ = ptrace(unix.PTRACE_INTERRUPT, tid, 0, 0)
			running = append(running, tid)
		}
	}
	if err := p.collect(running); err != nil {
		return err
	}
	var errs []error
	exiting := false
	for tid, t := range p.threads {
		if t.stopped {
			err := ptrace(unix.PTRACE_DETACH, tid, 0, uintptr(t.pendingSig))
			switch {
			case errors.Is(err, unix.ESRCH) && tid != p.pid:
				// It is exiting (the process is going away): it will be
				// a zombie that only its tracer may reap. Reap it now.
				// The owner thread may never exit (Go parks the main
				// thread instead), so nobody else ever would, and the
				// leader could never report. A non-leader always reports.
				var ws unix.WaitStatus
				_ = wait4(tid, &ws, unix.WALL)
				exiting = true
			case errors.Is(err, unix.ESRCH):
				exiting = true
			case err != nil:
				errs = append(errs, fmt.Errorf("detach thread %d: %w", tid, err))
			}
		}
		delete(p.threads, tid)
	}
	if exiting {
		// With its other threads reaped, an exiting leader reports its
		// exit; collect it (briefly: it may still be dying) so the process
		// does not linger as a traced zombie.
		for i := 0; i < 100; i++ {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(p.pid, &ws, unix.WALL|unix.WNOHANG, nil)
			if err != nil || wpid == p.pid && (ws.Exited() || ws.Signaled()) {
				if err == nil {
					p.exited, p.status = true, ws
					p.reaped = p.child
				}
				break
			}
			nanosleep(time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func (p *Process) closeOwner() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	if p.mem != nil {
		p.mem.Close()
	}
}

// Wait waits for a launched process to exit after Detach and returns its
// wait status.
func (p *Process) Wait() (unix.WaitStatus, error) {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	select {
	case <-p.done:
	default:
		return 0, errors.New("wait: detach from the process first")
	}
	if !p.child {
		return 0, errors.New("wait: only a launched process can be waited for")
	}
	if p.reaped {
		return p.status, nil
	}
	for {
		// A thread that died traced stays a zombie until its tracer reaps
		// it, and holds back the leader's exit. Any thread of this process
		// may reap the tracees of another, so reap such leftovers here.
		reapTracedZombies(p.pid)
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(p.pid, &ws, unix.WALL|unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, fmt.Errorf("wait for pid %d: %w", p.pid, err)
		case wpid == p.pid && (ws.Exited() || ws.Signaled()):
			p.reaped, p.status = true, ws
			return ws, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reapTracedZombies reaps the zombie threads of pid that this process traced
// (other than the leader). Threads it does not trace are left alone.
func reapTracedZombies(pid int) {
	tids, err := listTasks(pid)
	if err != nil {
		return
	}
	for _, tid := range tids {
		if tid != pid && taskState(pid, tid) == taskZombie {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil)
		}
	}
}

// exitedError says the process is gone, with its exit status when the tracer
// collected it.
func (p *Process) exitedError() error {
	if p.status != 0 || p.reaped {
		return fmt.Errorf("pid %d: %w (%s)", p.pid, ErrExited, describeStatus(p.status))
	}
	return fmt.Errorf("pid %d: %w", p.pid, ErrExited)
}

func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

// listTasks returns the tids in /proc/PID/task.
func listTasks(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

type taskStatus int

const (
	taskAlive taskStatus = iota
	taskZombie
	taskGone
)

// taskState reads whether thread tid of pid still runs, is a zombie, or is
// gone from /proc.
func taskState(pid, tid int) taskStatus {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return taskGone
	}
	// The state follows the parenthesised command name, which may itself
	// contain parentheses: take the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return taskAlive
	}
	switch b[i+2] {
	case 'Z':
		return taskZombie
	case 'X', 'x':
		return taskGone
	}
	return taskAlive
}

// PeekUser reads the word at offset off of a stopped thread's struct user
// (x86 debug registers live there).
func (p *Process) PeekUser(tid int, off uintptr) (uint64, error) {
	var v uint64
	err := p.do(func() error {
		if _, err := p.stoppedThread(tid); err != nil {
			return err
		}
		// PTRACE_PEEKUSR returns the word through data's pointer in the raw syscall.
		if err := ptrace(unix.PTRACE_PEEKUSR, tid, off, uintptr(unsafe.Pointer(&v))); err != nil {
			return p.threadError("read user area of", tid, err)
		}
		return nil
	})
	return v, err
}

// PokeUser writes the word at offset off of a stopped thread's struct user.
func (p *Process) PokeUser(tid int, off uintptr, v uint64) error {
	return p.do(func() error {
		if _, err := p.stoppedThread(tid); err != nil {
			return err
		}
		if err := ptrace(unix.PTRACE_POKEUSR, tid, off, uintptr(v)); err != nil {
			return p.threadError("write user area of", tid, err)
		}
		return nil
	})
}

// serveEvents handles the stops that running threads entered on their own:
// a signal is delivered and the thread continued, a new thread is adopted and
// started, a group-stop is kept with PTRACE_LISTEN, an exit is recorded. It
// runs on the owner thread while the target is meant to be running.
func (p *Process) serveEvents() {
	if p.detached || p.exited {
		return
	}
	for progressed := true; progressed; {
		progressed = false
		for tid, t := range p.threads {
			if t.stopped {
				continue // held by us
			}
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil)
			if err == unix.ECHILD {
				delete(p.threads, tid)
				progressed = true
				continue
			}
			if err != nil || wpid == 0 {
				continue
			}
			progressed = true
			p.handleStatus(tid, ws)
			if p.exited {
				return
			}
			if t, ok := p.threads[tid]; ok && t.stopped {
				p.resume(t)
			}
		}
	}
}

// resume continues one stopped thread. Runs on the owner thread.
func (p *Process) resume(t *thread) error {
	var err error
	if t.groupStop {
		err = ptrace(unix.PTRACE_LISTEN, t.tid, 0, 0)
	} else {
		err = ptrace(unix.PTRACE_CONT, t.tid, 0, uintptr(t.pendingSig))
	}
	// On ESRCH the thread is dying; its exit is collected later.
	t.stopped, t.pendingSig = false, 0
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("continue thread %d: %w", t.tid, err)
	}
	return nil
}

// Sleep waits for d while serving the running target's own stops (see
// serveEvents). The sampler sleeps here between ticks when its loop runs on
// the owner thread; elsewhere it is a plain sleep. It sleeps with nanosleep in
// slices of at most a millisecond, serving stops between slices: a runtime
// timer would need other, possibly starved, threads to fire on time.
func (p *Process) Sleep(d time.Duration) {
	if unix.Gettid() != p.owner || p.sigchld == nil {
		time.Sleep(d)
		return
	}
	end := time.Now().Add(d)
	for {
		select {
		case <-p.sigchld:
			p.serveEvents()
		default:
		}
		left := time.Until(end)
		if left <= 0 {
			return
		}
		nanosleep(min(left, time.Millisecond))
	}
}

// nanosleep blocks the calling OS thread for d.
func nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}

// SetLazy turns the sampling fast path on or off. While it is on, Stop leaves
// running any thread that is blocked in the same system call (same number,
// arguments, SP and PC, from /proc/PID/task/TID/syscall) as when its general
// registers were last read, and GetRegSet(NT_PRSTATUS) returns the registers
// read then. Such a thread has not executed user code since, so they are
// still its registers; waking it to stop it would cost the target CPU time and
// the sampler a scheduling delay. Other requests on a parked thread fail with
// ErrRunning, so turn SetLazy on only around a sampling run.
func (p *Process) SetLazy(on bool) error {
	return p.do(func() error {
		p.lazy = on
		if !on {
			for _, t := range p.threads {
				t.cachedRegs, t.captured, t.blockedAt = nil, "", ""
			}
		}
		return nil
	})
}

// InSyscall reports whether thread tid was in a system call when the last
// lazy Stop took it (known only while SetLazy is on, and only once its
// general registers were read in this stop).
func (p *Process) InSyscall(tid int) bool {
	var in bool
	_ = p.do(func() error {
		if t := p.threads[tid]; t != nil {
			// "-1 sp pc" is a thread blocked outside a system call (a page
			// fault, or preempted in user code).
			// Parked threads and stopped ones caught in a system call.
			in = t.parked || t.stopped && t.captured != ""
		}
		return nil
	})
	return in
}

// LastStop reports how many threads the last Stop stopped and how many it
// left parked (see SetLazy).
func (p *Process) LastStop() (stopped, parked int) {
	_ = p.do(func() error { stopped, parked = p.lastStopped, p.lastParked; return nil })
	return stopped, parked
}

// readSyscall returns /proc/PID/task/TID/syscall for a thread blocked in the
// kernel, or "" when it is running or the file cannot be read. Runs on the
// owner thread (it uses the process's buffer).
func (p *Process) readSyscall(tid int) string {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/task/%d/syscall", p.pid, tid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	n, err := unix.Read(fd, p.syscallBuf[:])
	unix.Close(fd)
	if err != nil || n == 0 || p.syscallBuf[0] == 'r' { // "running"
		return ""
	}
	return string(p.syscallBuf[:n])
}

// SetRealtime moves the owner OS thread to SCHED_FIFO (priority 1) or back
// to normal scheduling. A real-time sampler is not starved by the target's
// busy threads it has just resumed; it needs CAP_SYS_NICE (root). (It never
// spins: it blocks or sleeps while it waits for stops, so the target's
// threads get the CPU they need to reach them.)
func (p *Process) SetRealtime(on bool) error {
	return p.do(func() error {
		attr := &unix.SchedAttr{Policy: unix.SCHED_NORMAL}
		if on {
			attr = &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}
		}
		if err := unix.SchedSetAttr(0, attr, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("real-time sampling thread: %w (needs CAP_SYS_NICE: run as root)", ErrPermission)
			}
			return os.NewSyscallError("sched_setattr", err)
		}
		return nil
	})
}
