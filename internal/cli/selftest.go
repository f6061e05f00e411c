package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/mach"
	"github.com/machtrace/machtrace/tracer"
)

// SelftestOptions are the options of `machtrace selftest`.
type SelftestOptions struct {
	// Tracee makes this process the selftest's target: it spins until killed.
	Tracee bool
	// TraceeArgv and TraceeEnv start the target; the default is this
	// executable with `selftest --tracee`. Tests substitute their own binary.
	TraceeArgv []string
	TraceeEnv  []string
}

// NewCmdSelftest builds `machtrace selftest`.
func NewCmdSelftest(f *Factory, runF func(*SelftestOptions) error) *cobra.Command {
	o := &SelftestOptions{}
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Run machtrace's end-to-end checks against a process it starts",
		Long: `selftest exercises the local backend end to end on a copy of machtrace itself:
launch suspended, list threads, read registers of every flavor at the first
instruction, read memory at the PC, resume and suspend, write registers and
memory back unchanged, list images, detach; then attach by pid to a running
copy. On macOS it also checks that the Mach calls are built in and that
machtrace's kern_return_t messages match the system's mach_error_string.

It is the check to run on a Mac (Intel and Apple Silicon) after 'machtrace
setup', or with sudo. It prints one line per check and exits non-zero if
any failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			if o.Tracee {
				return selftestTracee()
			}
			return selftestRun(f, o)
		},
	}
	cmd.Flags().BoolVar(&o.Tracee, "tracee", false, "be the selftest's target (internal)")
	cmd.Flags().MarkHidden("tracee")
	return cmd
}

// selftestSink keeps the tracee's loop from being optimised away.
var selftestSink uint64

// selftestTracee spins forever: a target whose PC is always in user code.
func selftestTracee() error {
	for i := uint64(0); ; i++ {
		selftestSink += i
		if i%(1<<24) == 0 {
			runtime.Gosched()
		}
	}
}

// selftest collects check results.
type selftest struct {
	out                     io.Writer
	passed, failed, skipped int
}

// errSkip marks a check that does not apply here.
var errSkip = errors.New("skipped")

func (s *selftest) check(name string, fn func() (string, error)) bool {
	detail, err := fn()
	switch {
	case errors.Is(err, errSkip):
		s.skipped++
		fmt.Fprintf(s.out, "skip  %-34s %s\n", name, detail)
	case err != nil:
		s.failed++
		fmt.Fprintf(s.out, "FAIL  %-34s %v\n", name, err)
		return false
	default:
		s.passed++
		fmt.Fprintf(s.out, "ok    %-34s %s\n", name, detail)
	}
	return true
}

func selftestRun(f *Factory, o *SelftestOptions) error {
	s := &selftest{out: f.IO.Out}
	argv, env := o.TraceeArgv, o.TraceeEnv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("selftest: %w", err)
		}
		argv = []string{exe, "selftest", "--tracee"}
	}
	fmt.Fprintf(f.IO.Out, "machtrace selftest on %s/%s, target %s\n", runtime.GOOS, runtime.GOARCH, strings.Join(argv, " "))

	if runtime.GOOS == "darwin" {
		if !s.check("Mach calls built in (cgo)", func() (string, error) {
			if !mach.Available {
				return "", fmt.Errorf("built without cgo: %w", mach.ErrNoCgo)
			}
			return "yes", nil
		}) {
			return s.finish()
		}
		s.check("kern_return_t messages", selftestKernMessages)
	}

	s.launched(argv, env)
	s.attached(argv, env)
	return s.finish()
}

func (s *selftest) finish() error {
	fmt.Fprintf(s.out, "%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if s.failed > 0 {
		return fmt.Errorf("selftest: %d of %d checks failed", s.failed, s.passed+s.failed)
	}
	return nil
}

// selftestKernMessages compares machtrace's table with mach_error_string.
func selftestKernMessages() (string, error) {
	codes := []mach.KernReturn{mach.KERN_SUCCESS, mach.KERN_INVALID_ADDRESS, mach.KERN_PROTECTION_FAILURE,
		mach.KERN_INVALID_ARGUMENT, mach.KERN_FAILURE, mach.KERN_NO_ACCESS, mach.KERN_ABORTED,
		mach.KERN_INVALID_SECURITY, mach.KERN_TERMINATED, mach.KERN_DENIED, mach.MACH_SEND_INVALID_DEST,
		mach.MACH_RCV_INTERRUPTED, mach.MIG_SERVER_DIED}
	var bad []string
	for _, k := range codes {
		if sys := mach.ErrorString(k); sys != k.Message() {
			bad = append(bad, fmt.Sprintf("%s: system %q, ours %q", k.Name(), sys, k.Message()))
		}
	}
	if len(bad) > 0 {
		return "", errors.New(strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d codes match mach_error_string", len(codes)), nil
}

// optional turns "this flavor does not exist here" into a skip.
func optional(err error) error {
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, mach.ErrUnsupportedState) {
		return fmt.Errorf("%w: %v", errSkip, err)
	}
	return err
}

// killTarget ends a selftest child and reaps it.
func killTarget(t tracer.Target, pid int) {
	if p, err := os.FindProcess(pid); err == nil && pid > 0 {
		p.Kill()
	}
	if w, ok := t.Backend().(tracer.Waiter); ok {
		w.Wait()
	}
}

// launched runs the checks on a target launched suspended.
func (s *selftest) launched(argv, env []string) {
	var t tracer.Target
	if !s.check("launch suspended", func() (string, error) {
		var err error
		t, err = tracer.Launch(argv, tracer.LaunchOptions{Env: env})
		if err != nil {
			return "", err
		}
		if !t.Suspended() {
			return "", errors.New("launched target is not suspended")
		}
		return fmt.Sprintf("pid %d, %s", tracer.PIDOf(t), t.Arch()), nil
	}) {
		return
	}
	pid := tracer.PIDOf(t)
	defer func() {
		t.Close()
		killTarget(t, pid)
	}()

	var tid tracer.ThreadID
	var pc uint64
	s.check("threads at the first instruction", func() (string, error) {
		ths, err := t.Threads()
		if err != nil {
			return "", err
		}
		if len(ths) == 0 {
			return "", errors.New("no threads")
		}
		tid = ths[0].ID
		return fmt.Sprintf("%d thread(s), first id %d", len(ths), tid), nil
	})
	s.check("registers at the first instruction", func() (string, error) {
		r, err := t.ThreadState(tid, tracer.FlavorGeneral)
		if err != nil {
			return "", err
		}
		if r.PC() == 0 || r.SP() == 0 {
			return "", fmt.Errorf("pc %#x sp %#x", r.PC(), r.SP())
		}
		pc = r.PC()
		return fmt.Sprintf("pc %#x sp %#x", r.PC(), r.SP()), nil
	})
	s.check("read memory at the PC", func() (string, error) {
		buf := make([]byte, 16)
		n, err := t.ReadMemory(pc, buf)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("% x", buf[:n]), nil
	})
	s.check("resume, run, suspend", func() (string, error) {
		if err := t.Resume(); err != nil {
			return "", err
		}
		time.Sleep(300 * time.Millisecond)
		if err := t.Suspend(); err != nil {
			return "", err
		}
		ths, err := t.Threads()
		if err != nil {
			return "", err
		}
		tid = ths[0].ID
		return fmt.Sprintf("%d thread(s) after running", len(ths)), nil
	})
	var regs *tracer.Registers
	for _, fl := range []tracer.Flavor{tracer.FlavorGeneral, tracer.FlavorFloat, tracer.FlavorDebug, tracer.FlavorException} {
		s.check(fmt.Sprintf("thread state: %s", fl), func() (string, error) {
			r, err := t.ThreadState(tid, fl)
			if err != nil {
				return err.Error(), optional(err)
			}
			if fl == tracer.FlavorGeneral {
				regs, pc = r, r.PC()
			}
			return fmt.Sprintf("%d registers", r.Len()), nil
		})
	}
	s.check("set thread state (unchanged)", func() (string, error) {
		if regs == nil {
			return "no general state", errSkip
		}
		if err := t.SetThreadState(tid, regs); err != nil {
			return "", err
		}
		after, err := t.ThreadState(tid, tracer.FlavorGeneral)
		if err != nil {
			return "", err
		}
		if after.PC() != regs.PC() || after.SP() != regs.SP() {
			return "", fmt.Errorf("pc/sp changed: %#x/%#x -> %#x/%#x", regs.PC(), regs.SP(), after.PC(), after.SP())
		}
		return "written back and read again", nil
	})
	s.check("write memory (same bytes)", func() (string, error) {
		if regs == nil {
			return "no stack pointer", errSkip
		}
		buf := make([]byte, 8)
		if _, err := t.ReadMemory(regs.SP(), buf); err != nil {
			return "", err
		}
		if _, err := t.WriteMemory(regs.SP(), buf); err != nil {
			return "", err
		}
		return fmt.Sprintf("8 bytes at sp %#x", regs.SP()), nil
	})
	s.check("images", func() (string, error) {
		ims, err := t.Images()
		if err != nil {
			return "", err
		}
		if len(ims) == 0 {
			return "", errors.New("no images")
		}
		for _, im := range ims {
			if im.Contains(pc) {
				return fmt.Sprintf("%d images; pc in %s (base %#x)", len(ims), im.Path, im.Base), nil
			}
		}
		return fmt.Sprintf("%d images; pc %#x in none of them (JIT or stub)", len(ims), pc), nil
	})
	s.check("resume and detach", func() (string, error) {
		if err := t.Resume(); err != nil {
			return "", err
		}
		return "running, detached", t.Close()
	})
}

// attached runs the checks on a target that was started normally.
func (s *selftest) attached(argv, env []string) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if !s.check("start a process to attach to", func() (string, error) {
		if err := cmd.Start(); err != nil {
			return "", err
		}
		return fmt.Sprintf("pid %d", cmd.Process.Pid), nil
	}) {
		return
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	time.Sleep(200 * time.Millisecond)
	var t tracer.Target
	if !s.check("attach by pid", func() (string, error) {
		var err error
		t, err = tracer.Attach(cmd.Process.Pid)
		if err != nil {
			return "", err
		}
		return t.Describe(), nil
	}) {
		return
	}
	defer t.Close()
	s.check("suspend, sample, resume", func() (string, error) {
		var pcs []string
		for i := 0; i < 3; i++ {
			err := suspended(t, func() error {
				ths, err := t.Threads()
				if err != nil {
					return err
				}
				r, err := t.ThreadState(ths[0].ID, tracer.FlavorGeneral)
				if err != nil {
					return err
				}
				pcs = append(pcs, fmt.Sprintf("%#x", r.PC()))
				return nil
			})
			if err != nil {
				return "", err
			}
			time.Sleep(20 * time.Millisecond)
		}
		if t.Suspended() {
			return "", errors.New("target left suspended")
		}
		return "pcs " + strings.Join(pcs, " "), nil
	})
	s.check("detach", func() (string, error) { return "target keeps running", t.Close() })
}
