package darwin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"github.com/machtrace/machtrace/mach"
)

// Task is a traced macOS process: a send right to its task port and the
// bookkeeping around it. A Task is not safe for concurrent use; the tracer
// adapter serialises calls.
type Task struct {
	k       kernel
	pid     int
	port    mach.Task
	goarch  string // "amd64" or "arm64": the tracer's and so the target's
	name    string
	flags   mach.CSFlags
	flagsOK bool
	pacMask uint64
	pageSz  uint64

	tokens    []mach.SuspensionToken // task_suspend2 holds, innermost last
	spawnHold bool                   // the POSIX_SPAWN_START_SUSPENDED hold is still on
	threads   *threadTable
	detached  bool

	launched bool
	exePath  string          // the launched program's path
	copiers  *sync.WaitGroup // stdio pipe copies of a launched child
	waitOnce sync.Once
	status   int
	waitErr  error
}

// Thread describes one thread of a task.
type Thread struct {
	ID           uint64 // system-wide thread id (THREAD_IDENTIFIER_INFO)
	Name         string // pthread name; may be empty
	RunState     int32  // mach.TH_STATE_*
	SuspendCount int32  // the thread's own user suspend count
}

// LaunchOptions configure Launch. Nil streams mean /dev/null; a stream that
// is not an *os.File is connected through a pipe.
type LaunchOptions struct {
	Env    []string // nil means the tracer's environment
	Dir    string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Attach takes the task port of a running process with task_for_pid. When
// macOS refuses, the error is an *AttachError whose diagnosis names the rule
// (root, the debugger entitlement, the hardened runtime, SIP, ...) and the fix.
func Attach(pid int) (*Task, error) { return attach(machKernel{}, runtime.GOARCH, pid) }

// Launch starts argv[0] (searched in PATH) with posix_spawn and
// POSIX_SPAWN_START_SUSPENDED, so it stops before its first instruction, and
// takes its task port. The returned task is suspended once: the first Resume
// lets it run. If the task port is refused, the child is killed rather than
// left stopped forever.
func Launch(argv []string, opts LaunchOptions) (*Task, error) {
	return launch(machKernel{}, runtime.GOARCH, argv, opts)
}

func attach(k kernel, goarch string, pid int) (*Task, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("attach %d: %w (a pid is positive; pid 0 is the kernel, reach it over KDP)", pid, ErrNoProcess)
	}
	port, err := k.taskForPid(pid)
	if err != nil || port == mach.MACH_PORT_NULL {
		return nil, attachError(k, pid, err)
	}
	t := newTask(k, goarch, pid, port)
	if t.goarch == "arm64" {
		if pi, err := k.processInfo(pid); err == nil && pi.Translated {
			t.release()
			return nil, &AttachError{PID: pid, Err: errors.New("target runs under Rosetta"),
				Diagnosis: Diagnose(AttachFacts{PID: pid, Exists: true, Translated: true})}
		}
	}
	return t, nil
}

// attachError runs the permission doctor on a failed task_for_pid.
func attachError(k kernel, pid int, err error) error {
	if errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("attach %d: %w", pid, err)
	}
	f := AttachFacts{PID: pid, Exists: k.processExists(pid), Root: k.euid() == 0}
	if err == nil {
		f.NullPort = true
		err = errors.New("task_for_pid returned MACH_PORT_NULL")
	}
	var ke *mach.KernError
	if errors.As(err, &ke) {
		f.Code = ke.Code
	}
	if f.Exists {
		if flags, ferr := k.csFlags(pid); ferr == nil {
			f.TargetFlags, f.FlagsKnown = flags, true
		}
		if pi, perr := k.processInfo(pid); perr == nil {
			f.SameUser = Of(pi.UID == k.euid())
			f.Translated = pi.Translated
		}
		if !f.Root {
			f.Entitled = k.entitled()
		}
	}
	return &AttachError{PID: pid, Err: err, Diagnosis: Diagnose(f)}
}

func newTask(k kernel, goarch string, pid int, port mach.Task) *Task {
	t := &Task{k: k, pid: pid, port: port, goarch: goarch, threads: newThreadTable(), pageSz: k.pageSize()}
	if t.pageSz == 0 {
		t.pageSz = 4096
	}
	if flags, err := k.csFlags(pid); err == nil {
		t.flags, t.flagsOK = flags, true
	}
	if pi, err := k.processInfo(pid); err == nil {
		t.name = pi.Name
	}
	t.pacMask = ^uint64(0)
	if goarch == "arm64" {
		t.pacMask = PACMask(k.vaBits())
	}
	return t
}

func launch(k kernel, goarch string, argv []string, opts LaunchOptions) (*Task, error) {
	if len(argv) == 0 {
		return nil, errors.New("launch: empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	copiers := new(sync.WaitGroup)
	stdio, closeChildEnds, err := stdioFiles(opts, copiers)
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", argv[0], err)
	}
	pid, err := k.spawn(&mach.SpawnAttr{
		Path: path, Argv: argv, Env: env, Dir: opts.Dir,
		Stdio: [3]int{int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd())},
		Flags: mach.POSIX_SPAWN_START_SUSPENDED,
	})
	closeChildEnds()
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", argv[0], err)
	}
	port, err := k.taskForPid(pid)
	if err != nil || port == mach.MACH_PORT_NULL {
		// The start-suspended hold is tied to no port: a child we cannot
		// control would stay stopped forever. Kill and reap it.
		aerr := attachError(k, pid, err)
		k.kill(pid)
		k.wait(pid)
		return nil, fmt.Errorf("launch %s: %w", argv[0], aerr)
	}
	nt := newTask(k, goarch, pid, port)
	nt.launched, nt.spawnHold, nt.exePath = true, true, path
	nt.copiers = copiers
	return nt, nil
}

// stdioFiles returns the child's three descriptors and a function that
// closes the tracer's copies of them once the child has been spawned.
func stdioFiles(opts LaunchOptions, copiers *sync.WaitGroup) ([3]*os.File, func(), error) {
	var files [3]*os.File
	var mine []*os.File
	closeAll := func() {
		for _, f := range mine {
			f.Close()
		}
	}
	devNull := func(flag int) (*os.File, error) {
		f, err := os.OpenFile(os.DevNull, flag, 0)
		if err == nil {
			mine = append(mine, f)
		}
		return f, err
	}
	var err error
	switch in := opts.Stdin.(type) {
	case nil:
		files[0], err = devNull(os.O_RDONLY)
	case *os.File:
		files[0] = in
	default:
		r, w, perr := os.Pipe()
		if perr != nil {
			err = perr
			break
		}
		mine = append(mine, r)
		files[0] = r
		copiers.Add(1)
		go func() { defer copiers.Done(); io.Copy(w, in); w.Close() }()
	}
	for i, out := range []io.Writer{opts.Stdout, opts.Stderr} {
		if err != nil {
			break
		}
		switch w := out.(type) {
		case nil:
			files[i+1], err = devNull(os.O_WRONLY)
		case *os.File:
			files[i+1] = w
		default:
			r, pw, perr := os.Pipe()
			if perr != nil {
				err = perr
				break
			}
			mine = append(mine, pw)
			files[i+1] = pw
			copiers.Add(1)
			go func() { defer copiers.Done(); io.Copy(w, r); r.Close() }()
		}
	}
	if err != nil {
		closeAll()
		return files, func() {}, err
	}
	return files, closeAll, nil
}

// PID returns the process id.
func (t *Task) PID() int { return t.pid }

// Arch returns the target's architecture as GOARCH spells it.
func (t *Task) Arch() string { return t.goarch }

// Name returns the process name (p_comm), which may be empty.
func (t *Task) Name() string { return t.name }

// CodeSignFlags returns the target's code-signing flags and whether they
// could be read.
func (t *Task) CodeSignFlags() (mach.CSFlags, bool) { return t.flags, t.flagsOK }

// StripPointer removes pointer-authentication bits from a code address
// (a saved return address) of the task; on x86_64 it returns addr as is.
func (t *Task) StripPointer(addr uint64) uint64 { return StripPAC(addr, t.pacMask) }

// Describe returns "pid 1234 (name)".
func (t *Task) Describe() string {
	if t.name == "" {
		return fmt.Sprintf("pid %d", t.pid)
	}
	return fmt.Sprintf("pid %d (%s)", t.pid, t.name)
}

// Suspended reports whether the tracer holds the task stopped.
func (t *Task) Suspended() bool { return len(t.tokens) > 0 || t.spawnHold }

// Suspend stops every thread of the task with task_suspend2 and keeps the
// suspension token. If the tracer dies, the kernel destroys the token and
// the task runs again. Calls nest.
func (t *Task) Suspend() error {
	if t.detached {
		return ErrDetached
	}
	tok, err := t.k.suspend2(t.port)
	if err != nil {
		return t.taskErr("task_suspend2", err)
	}
	t.tokens = append(t.tokens, tok)
	return nil
}

// Resume undoes the innermost suspension: a task_suspend2 token, or, for a
// launched task, finally the start-suspended hold of posix_spawn.
func (t *Task) Resume() error {
	if t.detached {
		return ErrDetached
	}
	if n := len(t.tokens); n > 0 {
		tok := t.tokens[n-1]
		t.tokens = t.tokens[:n-1]
		if err := t.k.resume2(tok); err != nil {
			return t.taskErr("task_resume2", err)
		}
		return nil
	}
	if t.spawnHold {
		// No token names this hold; task_resume releases it (the kernel
		// logs an "out-of-band resume", which is expected).
		t.spawnHold = false
		if err := t.k.resume(t.port); err != nil {
			return t.taskErr("task_resume", err)
		}
		return nil
	}
	return fmt.Errorf("resume %s: %w", t.Describe(), ErrNotSuspended)
}

// refreshThreads lists the task's threads and updates the thread table,
// releasing the port references it does not keep.
func (t *Task) refreshThreads() error {
	ports, err := t.k.threads(t.port)
	if err != nil {
		return t.taskErr("task_threads", err)
	}
	release := t.threads.refresh(ports, func(th mach.Thread) (uint64, error) {
		var id mach.ThreadIdentifierInfo
		if err := t.k.threadInfo(th, &id); err != nil {
			return 0, err
		}
		return id.ThreadID, nil
	})
	for _, p := range release {
		t.k.deallocate(mach.Port(p)) // a dead name's reference is released the same way
	}
	return nil
}

// ThreadIDs lists the live threads' ids in task order (the main thread first).
func (t *Task) ThreadIDs() ([]uint64, error) {
	if t.detached {
		return nil, ErrDetached
	}
	if err := t.refreshThreads(); err != nil {
		return nil, err
	}
	return append([]uint64(nil), t.threads.order...), nil
}

// Threads lists the live threads with their names and states. A thread that
// dies while it is being described is left out.
func (t *Task) Threads() ([]Thread, error) {
	ids, err := t.ThreadIDs()
	if err != nil {
		return nil, err
	}
	out := make([]Thread, 0, len(ids))
	for _, id := range ids {
		th, _ := t.threads.port(id)
		var ext mach.ThreadExtendedInfo
		if err := t.k.threadInfo(th, &ext); err != nil {
			if mach.IsThreadGone(err) {
				continue
			}
			return nil, fmt.Errorf("thread %d of %s: %w", id, t.Describe(), err)
		}
		info := Thread{ID: id, Name: ext.Name(), RunState: ext.RunState}
		var basic mach.ThreadBasicInfo
		if err := t.k.threadInfo(th, &basic); err == nil {
			info.SuspendCount = basic.SuspendCount
		}
		out = append(out, info)
	}
	return out, nil
}

// threadPort finds the kept right of a thread id, listing the threads again
// if the id is new.
func (t *Task) threadPort(id uint64) (mach.Thread, error) {
	if t.detached {
		return 0, ErrDetached
	}
	if th, ok := t.threads.port(id); ok {
		return th, nil
	}
	if err := t.refreshThreads(); err != nil {
		return 0, err
	}
	if th, ok := t.threads.port(id); ok {
		return th, nil
	}
	return 0, fmt.Errorf("thread %d of %s: %w", id, t.Describe(), ErrNoThread)
}

// GetState reads one flavor of a thread's state. On arm64 the
// pointer-authentication bits of PC, LR and FP are stripped, so they are
// plain addresses.
func (t *Task) GetState(id uint64, flavor mach.StateFlavor) (mach.State, error) {
	s, err := mach.NewState(t.goarch, flavor)
	if err != nil {
		return nil, err
	}
	th, err := t.threadPort(id)
	if err != nil {
		return nil, err
	}
	if err := t.k.getState(th, s); err != nil {
		return nil, t.threadErr("thread_get_state", id, err)
	}
	if ts, ok := s.(*mach.ARMThreadState64); ok {
		ts.Pc = StripPAC(ts.Pc, t.pacMask)
		ts.Lr = StripPAC(ts.Lr, t.pacMask)
		ts.Fp = StripPAC(ts.Fp, t.pacMask)
	}
	return s, nil
}

// SetState writes one flavor of a thread's state. It refuses Apple platform
// binaries: on macOS 14.4 and later the kernel answers thread_set_state on
// them with a guard exception that kills the tracer.
func (t *Task) SetState(id uint64, s mach.State) error {
	if t.flagsOK && t.flags&mach.CS_PLATFORM_BINARY != 0 {
		return fmt.Errorf("set thread %d state of %s: %w (macOS forbids setting thread state of system processes and would crash machtrace; trace a non-system program)", id, t.Describe(), ErrPlatformBinary)
	}
	if _, err := mach.NewState(t.goarch, s.Flavor()); err != nil {
		return err
	}
	th, err := t.threadPort(id)
	if err != nil {
		return err
	}
	if err := t.k.setState(th, s); err != nil {
		if _, ok := s.(*mach.ARMThreadState64); ok && errors.Is(err, mach.KERN_PROTECTION_FAILURE) {
			return fmt.Errorf("set thread %d state of %s: %w: %w (the target is arm64e, with pointer authentication; an arm64 tracer may not set its registers)", id, t.Describe(), ErrPermission, err)
		}
		return t.threadErr("thread_set_state", id, err)
	}
	return nil
}

// ReadMemory reads target memory at addr into p. It returns the number of
// leading bytes read; fewer than len(p) comes with the error of the first
// unreadable page (matching ErrUnmapped for a hole).
func (t *Task) ReadMemory(addr uint64, p []byte) (int, error) {
	if t.detached {
		return 0, ErrDetached
	}
	n, err := readPaged(func(a uint64, b []byte) (int, error) { return t.k.readMem(t.port, a, b) }, addr, p, t.pageSz)
	if err != nil {
		return n, fmt.Errorf("read %#x+%d of %s: %w", addr+uint64(n), len(p)-n, t.Describe(), t.deadOr(err))
	}
	return n, nil
}

// WriteMemory writes p at addr. If the pages are not writable it makes them
// writable (with VM_PROT_COPY, so shared and file-backed pages get a private
// copy), writes, and restores their protection. Patching code pages of a
// process whose code signature is enforced (CS_KILL, the default on Apple
// Silicon) makes the kernel kill it when it runs them.
func (t *Task) WriteMemory(addr uint64, p []byte) (int, error) {
	if t.detached {
		return 0, ErrDetached
	}
	if len(p) == 0 {
		return 0, nil
	}
	err := t.k.writeMem(t.port, addr, p)
	if errors.Is(err, mach.KERN_PROTECTION_FAILURE) || errors.Is(err, mach.KERN_INVALID_ADDRESS) {
		err = t.writeProtected(addr, p)
	}
	if err != nil {
		return 0, fmt.Errorf("write %#x+%d of %s: %w", addr, len(p), t.Describe(), t.deadOr(err))
	}
	return len(p), nil
}

func (t *Task) writeProtected(addr uint64, p []byte) error {
	r, err := t.k.region(t.port, addr)
	if err != nil {
		return err
	}
	if r.Address > addr || addr+uint64(len(p)) > r.Address+r.Size {
		return fmt.Errorf("range is not inside one mapping: %w", mach.ErrUnmapped)
	}
	if err := t.k.protect(t.port, addr, uint64(len(p)), false, mach.VM_PROT_READ|mach.VM_PROT_WRITE|mach.VM_PROT_COPY); err != nil {
		return err
	}
	werr := t.k.writeMem(t.port, addr, p)
	perr := t.k.protect(t.port, addr, uint64(len(p)), false, r.Info.Protection)
	if werr != nil {
		return werr
	}
	if perr != nil {
		return fmt.Errorf("restore protection %s: %w", r.Info.Protection, perr)
	}
	return nil
}

// taskMemory reads a task's memory as an io.ReaderAt at absolute addresses.
type taskMemory struct{ t *Task }

func (m taskMemory) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.t.ReadMemory(uint64(off), p)
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Images lists the loaded Mach-O images from dyld's dyld_all_image_infos
// (found with task_info(TASK_DYLD_INFO)), sorted by address, dyld included.
// A launched task that has not run yet has no images. While the task runs,
// a list that dyld is changing is read again; a suspended task caught in the
// middle of a change yields what is stable and ErrImageListBusy.
func (t *Task) Images() ([]Image, error) {
	if t.detached {
		return nil, ErrDetached
	}
	di, err := t.k.dyldInfo(t.port)
	if err != nil {
		return nil, t.taskErr("task_info(TASK_DYLD_INFO)", err)
	}
	if di.AllImageInfoAddr == 0 {
		return nil, nil
	}
	if di.AllImageInfoFormat != mach.TASK_DYLD_ALL_IMAGE_INFO_64 {
		return nil, fmt.Errorf("images of %s: %w (32-bit dyld image list)", t.Describe(), errors.ErrUnsupported)
	}
	tries := 5
	if t.Suspended() {
		tries = 1 // nothing changes while it is stopped
	}
	images, err := ReadImages(taskMemory{t}, di.AllImageInfoAddr, tries)
	if err == nil && len(images) == 0 {
		// dyld has not run yet (launched suspended): find the executable
		// and dyld by their Mach-O headers in the address space.
		images = t.scanImages()
	}
	return images, err
}

// Mach-O file types (mach-o/loader.h) that scanImages looks for.
const (
	mhExecute   = 2
	mhDylinker  = 7
	maxRegions  = 4096
	dyldDefault = "/usr/lib/dyld"
)

// scanImages walks the task's regions with mach_vm_region and lists the main
// executable and dyld from the Mach-O headers at the start of regions: the
// image list of a task that has not run dyld yet.
func (t *Task) scanImages() []Image {
	var images []Image
	var hdr [16]byte
	addr := uint64(0)
	for i := 0; i < maxRegions; i++ {
		r, err := t.k.region(t.port, addr)
		if err != nil || r.Size == 0 {
			break
		}
		if r.Info.Protection&mach.VM_PROT_READ != 0 {
			if n, _ := t.k.readMem(t.port, r.Address, hdr[:]); n == len(hdr) &&
				mach.ByteOrder.Uint32(hdr[0:]) == mhMagic64 {
				path := ""
				switch mach.ByteOrder.Uint32(hdr[12:]) {
				case mhExecute:
					path = t.exePath
					if path == "" {
						path = t.name
					}
				case mhDylinker:
					path = dyldDefault
				}
				if path != "" {
					images = append(images, imageAt(taskMemory{t}, r.Address, path))
				}
			}
		}
		if r.Address+r.Size <= addr {
			break // no progress: never loop
		}
		addr = r.Address + r.Size
	}
	return images
}

// Detach releases every suspension this tracer holds (so the task runs) and
// every port right it kept. The Task cannot be used afterwards, except Wait.
func (t *Task) Detach() error {
	if t.detached {
		return nil
	}
	var errs []error
	for len(t.tokens) > 0 || t.spawnHold {
		if err := t.Resume(); err != nil && !errors.Is(err, ErrExited) {
			errs = append(errs, err)
		}
	}
	t.release()
	return errors.Join(errs...)
}

// release drops the thread and task port rights.
func (t *Task) release() {
	for _, th := range t.threads.drain() {
		t.k.deallocate(mach.Port(th))
	}
	t.k.deallocate(mach.Port(t.port))
	t.detached = true
}

// Wait waits for a launched task to exit and returns its exit status
// (128+signal for a signal death). Only meaningful after the task was
// resumed or detached.
func (t *Task) Wait() (int, error) {
	if !t.launched {
		return 0, fmt.Errorf("wait %s: %w (only launched processes can be waited for)", t.Describe(), errors.ErrUnsupported)
	}
	t.waitOnce.Do(func() {
		t.status, t.waitErr = t.k.wait(t.pid)
		if t.copiers != nil {
			t.copiers.Wait()
		}
	})
	return t.status, t.waitErr
}

// taskErr wraps an error of a task-level call, recognising a dead task
// and the Developer Mode refusal.
func (t *Task) taskErr(op string, err error) error {
	if errors.Is(err, mach.KERN_INVALID_SECURITY) {
		d := Diagnose(AttachFacts{PID: t.pid, Exists: true, Code: mach.KERN_INVALID_SECURITY})
		return fmt.Errorf("%s %s: %w: %w (%s; fix: %s)", op, t.Describe(), ErrPermission, err, d.Reason, d.Fix)
	}
	return fmt.Errorf("%s %s: %w", op, t.Describe(), t.deadOr(err))
}

// threadErr wraps an error of a thread-level call: a thread that died is
// ErrNoThread, a task that died is ErrExited.
func (t *Task) threadErr(op string, id uint64, err error) error {
	if mach.IsThreadGone(err) {
		if _, perr := t.k.pidForTask(t.port); perr != nil {
			return fmt.Errorf("%s thread %d of %s: %w: %w", op, id, t.Describe(), ErrExited, err)
		}
		return fmt.Errorf("%s thread %d of %s: %w: %w", op, id, t.Describe(), ErrNoThread, err)
	}
	return t.taskErr(fmt.Sprintf("%s thread %d of", op, id), err)
}

// deadOr returns err, marked with ErrExited when the task is gone
// (pid_for_task is a cheap liveness probe).
func (t *Task) deadOr(err error) error {
	if errors.Is(err, mach.ErrGone) || errors.Is(err, mach.KERN_FAILURE) || errors.Is(err, mach.KERN_INVALID_ARGUMENT) {
		if _, perr := t.k.pidForTask(t.port); perr != nil {
			return fmt.Errorf("%w: %w", ErrExited, err)
		}
	}
	return err
}
