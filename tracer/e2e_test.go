package tracer_test

// End-to-end tests on real processes: the test binary re-executes itself as
// the tracee (see internal/testutil/tracee). The same code runs on every
// backend that can launch a local process.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

func TestMain(m *testing.M) {
	tracee.RunIfRequested()
	if pid := os.Getenv("MACHTRACE_TEST_SAMPLER_FOR"); pid != "" {
		runSamplerHelper(pid)
		return
	}
	os.Exit(m.Run())
}

// funcName returns the symbol name of a Go function value.
func funcName(f any) string {
	return runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
}

func TestRegistersAndSetRegister(t *testing.T) {
	l := testutil.Launch(t, tracee.KnownRegs)
	target := l.Target

	// Find the thread spinning in SpinWithKnownRegisters: a thread can be
	// caught inside a signal handler, so retry a few times.
	var tid tracer.ThreadID
	var regs *tracer.Registers
	for try := 0; try < 50 && regs == nil; try++ {
		if err := target.Suspend(); err != nil {
			t.Fatal(err)
		}
		threads, err := target.Threads()
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range threads {
			r, err := target.ThreadState(th.ID, tracer.FlavorGeneral)
			if err != nil {
				t.Fatalf("thread %d: %v", th.ID, err)
			}
			if v, _ := r.Get(anyKnownName()); v == tracee.KnownRegisters[anyKnownName()] {
				tid, regs = th.ID, r
				break
			}
		}
		if regs == nil {
			target.Resume()
			time.Sleep(20 * time.Millisecond)
		}
	}
	if regs == nil {
		t.Fatal("no thread holds the known register values")
	}
	for name, want := range tracee.KnownRegisters {
		got, ok := regs.Get(name)
		if !ok {
			t.Errorf("register %s missing", name)
			continue
		}
		if got != want {
			t.Errorf("%s = %#x, want %#x", name, got, want)
		}
	}
	if regs.PC() == 0 || regs.SP() == 0 {
		t.Errorf("PC %#x SP %#x: want both set", regs.PC(), regs.SP())
	}

	// Write the control register: the tracee leaves its loop and exits
	// with that value.
	if err := regs.Set(tracee.ControlRegister, 42); err != nil {
		t.Fatal(err)
	}
	if err := target.SetThreadState(tid, regs); err != nil {
		t.Fatal(err)
	}
	back, err := target.ThreadState(tid, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := back.Get(tracee.ControlRegister); v != 42 {
		t.Fatalf("read back %s = %d, want 42", tracee.ControlRegister, v)
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	w, ok := target.Backend().(tracer.Waiter)
	if !ok {
		t.Skip("backend cannot wait for its child")
	}
	code, err := w.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if code != 42 {
		t.Fatalf("tracee exited with %d, want 42 (the value written to %s)", code, tracee.ControlRegister)
	}
}

func anyKnownName() string {
	if runtime.GOARCH == "arm64" {
		return "x5"
	}
	return "rbx"
}

func TestFloatState(t *testing.T) {
	l := testutil.Launch(t, tracee.Sleep, "30")
	if err := l.Target.Suspend(); err != nil {
		t.Fatal(err)
	}
	defer l.Target.Resume()
	threads, err := l.Target.Threads()
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Target.ThreadState(threads[0].ID, tracer.FlavorFloat)
	testutil.SkipIfUnsupported(t, err)
	name := "xmm0"
	if runtime.GOARCH == "arm64" {
		name = "v0"
	}
	i := r.Layout().Index(name)
	if i < 0 {
		t.Fatalf("no %s in the float state", name)
	}
	if got := len(r.BytesAt(i)); got != 16 {
		t.Fatalf("%s is %d bytes, want 16", name, got)
	}
	// Write a vector register and read it back.
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if err := r.SetBytesAt(i, want); err != nil {
		t.Fatal(err)
	}
	if err := l.Target.SetThreadState(threads[0].ID, r); err != nil {
		t.Fatal(err)
	}
	back, err := l.Target.ThreadState(threads[0].ID, tracer.FlavorFloat)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.BytesAt(back.Layout().Index(name)); string(got) != string(want) {
		t.Fatalf("%s read back % x, want % x", name, got, want)
	}
}

func TestNamedThreads(t *testing.T) {
	if !tracee.ThreadNamesSupported {
		t.Skip("the tracee cannot name its threads on this OS")
	}
	l := testutil.Launch(t, tracee.NamedThreads)
	threads, err := l.Target.Threads()
	if err != nil {
		t.Fatal(err)
	}
	tids := map[tracer.ThreadID]bool{}
	named := map[string]tracer.ThreadID{}
	for _, th := range threads {
		if tids[th.ID] {
			t.Errorf("thread id %d listed twice", th.ID)
		}
		tids[th.ID] = true
		if strings.HasPrefix(th.Name, "mt-worker-") {
			named[th.Name] = th.ID
		}
	}
	for i := 0; i < 8; i++ {
		if _, ok := named[fmt.Sprintf("mt-worker-%d", i)]; !ok {
			t.Errorf("thread mt-worker-%d not listed (got %v)", i, threads)
		}
	}
}

// sampleFor launches program, samples it and returns the profile.
func sampleFor(t *testing.T, opts tracer.SampleOptions, program string, args ...string) (*tracer.Profile, *testutil.Launched) {
	t.Helper()
	l := testutil.Launch(t, program, args...)
	prof, err := tracer.Sample(context.Background(), l.Target, opts)
	if err != nil {
		t.Fatal(err)
	}
	return prof, l
}

func TestSampleAccuracy(t *testing.T) {
	// As root the sampler runs at real-time priority, so a loaded machine
	// does not starve it of ticks (the split is measured either way).
	prof, l := sampleFor(t, tracer.SampleOptions{Rate: 1000, Duration: 2 * time.Second, Unwind: true, Realtime: os.Geteuid() == 0}, tracee.Split, "30")
	st := prof.Stats
	t.Logf("ticks %d taken %d late %d missed %d samples %d, stopped %.1f%% of %v (max stop %v), achieved %.0f Hz",
		st.Ticks, st.Taken, st.Late, st.Missed, st.Samples, 100*st.StoppedFraction(), st.Wall, st.MaxStop, st.AchievedRate())
	if st.Taken < 100 {
		t.Fatalf("only %d ticks taken in 2 s at 1000 Hz", st.Taken)
	}
	if st.Ticks != st.Taken+st.Missed {
		t.Errorf("ticks %d != taken %d + missed %d", st.Ticks, st.Taken, st.Missed)
	}
	sym := tracer.NewSymbolizer(prof.Images, nil)
	hotA, hotB := funcName(tracee.HotA), funcName(tracee.HotB)
	var inA, inB, resolved int
	for _, s := range prof.Samples {
		if loc := sym.Lookup(s.Stack[0]); loc.Known() {
			resolved++
		}
		// Inclusive attribution: the frame nearest the leaf that is HotA or HotB.
		for i, pc := range s.Stack {
			if i > 0 {
				pc-- // a return address points after the call
			}
			name := sym.Lookup(pc).Func
			if name == hotA {
				inA++
				break
			}
			if name == hotB {
				inB++
				break
			}
		}
	}
	if inA+inB < st.Taken/2 {
		t.Fatalf("only %d of %d samples in HotA/HotB", inA+inB, len(prof.Samples))
	}
	share := float64(inA) / float64(inA+inB)
	t.Logf("HotA %d, HotB %d: share %.3f (truth %.2f); %d/%d samples resolved (%.1f%%), pid %d",
		inA, inB, share, tracee.SplitShareA, resolved, len(prof.Samples), 100*float64(resolved)/float64(len(prof.Samples)), l.PID)
	if d := share - tracee.SplitShareA; d > 0.05 || d < -0.05 {
		t.Errorf("HotA share %.3f, want %.2f ± 0.05", share, tracee.SplitShareA)
	}
	if frac := float64(resolved) / float64(len(prof.Samples)); frac < 0.95 {
		t.Errorf("%.1f%% of samples resolved to a symbol, want >= 95%%", 100*frac)
	}
}

func TestSampleThreadChurn(t *testing.T) {
	prof, l := sampleFor(t, tracer.SampleOptions{Rate: 1000, Duration: 2 * time.Second}, tracee.Churn, "30")
	t.Logf("churn: %d ticks taken, %d samples over %d distinct threads, %d vanished mid-sample",
		prof.Stats.Taken, prof.Stats.Samples, countThreads(prof), prof.Stats.Vanished)
	if prof.Stats.Taken < 100 {
		t.Fatalf("only %d ticks taken", prof.Stats.Taken)
	}
	if countThreads(prof) < 10 {
		t.Errorf("saw %d threads; the tracee should have churned through many", countThreads(prof))
	}
	if err := l.Target.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.AssertRunning(t, l.PID)
}

func countThreads(p *tracer.Profile) int {
	seen := map[tracer.ThreadID]bool{}
	for _, s := range p.Samples {
		seen[s.Thread] = true
	}
	return len(seen)
}

func TestSampleTargetExits(t *testing.T) {
	prof, _ := sampleFor(t, tracer.SampleOptions{Rate: 500, Duration: 10 * time.Second}, tracee.ExitAfter, "300")
	if !prof.TargetExited {
		t.Fatalf("run ended with %q, want the target's exit", prof.Ended)
	}
	if prof.Stats.Taken == 0 || prof.Stats.Wall > 5*time.Second {
		t.Fatalf("taken %d in %v: want samples before the exit and an early end", prof.Stats.Taken, prof.Stats.Wall)
	}
	t.Logf("ended: %s after %d ticks", prof.Ended, prof.Stats.Taken)
}

func TestSuspendCounting(t *testing.T) {
	l := testutil.Launch(t, tracee.Sleep, "30")
	tg := l.Target
	if err := tg.Resume(); !errors.Is(err, tracer.ErrNotSuspended) {
		t.Fatalf("Resume of a running target: %v, want ErrNotSuspended", err)
	}
	for i := 0; i < 2; i++ {
		if err := tg.Suspend(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	if !tg.Suspended() {
		t.Fatal("one Resume after two Suspends must leave the target suspended")
	}
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	if tg.Suspended() {
		t.Fatal("target still suspended after matching Resumes")
	}
	testutil.AssertRunning(t, l.PID)
}

func TestReadMemory(t *testing.T) {
	l := testutil.Launch(t, tracee.Sleep, "30")
	images, err := l.Target.Images()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	var text tracer.Image
	for _, im := range images {
		if im.Path == exe && strings.Contains(im.Perms, "x") {
			text = im
			break
		}
	}
	if text.End == 0 {
		t.Skipf("no executable mapping of %s in %d images", exe, len(images))
	}
	// The tracee is this same binary: its text at the same file offset must
	// equal the file's bytes.
	buf := make([]byte, 256)
	n, err := l.Target.ReadMemory(text.Start, buf)
	if err != nil || n != len(buf) {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make([]byte, len(buf))
	if _, err := f.ReadAt(want, int64(text.Offset)); err != nil {
		t.Fatal(err)
	}
	if string(buf) != string(want) {
		t.Fatal("target text differs from the file")
	}
	// Unmapped memory is an error that says so.
	if _, err := l.Target.ReadMemory(8, buf[:8]); !errors.Is(err, tracer.ErrUnmapped) {
		t.Fatalf("reading address 8: %v, want ErrUnmapped", err)
	}
}

func TestAttachErrors(t *testing.T) {
	if _, err := tracer.Attach(0x7ffffff0); !errors.Is(err, tracer.ErrNoProcess) {
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip(err)
		}
		t.Fatalf("attach to a missing pid: %v, want ErrNoProcess", err)
	}
}

// runSamplerHelper is the tracer process of TestTracerKilled: it attaches to
// pid and samples until killed.
func runSamplerHelper(pidStr string) {
	pid, _ := strconv.Atoi(pidStr)
	tg, err := tracer.Attach(pid)
	if err != nil {
		fmt.Println("ATTACH-FAILED", err)
		os.Exit(1)
	}
	_, err = tracer.Sample(context.Background(), tg, tracer.SampleOptions{Rate: 1000, Progress: func(tracer.SampleStats) {
		fmt.Println("SAMPLING")
	}, ProgressEvery: 100 * time.Millisecond})
	fmt.Println("SAMPLE-ENDED", err)
	os.Exit(0)
}

func TestTracerKilledLeavesTargetRunning(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks /proc task states")
	}
	target := exec.Command(tracee.Argv()[0], tracee.Argv()[1:]...)
	target.Env = tracee.Env(tracee.SpinThreads, "4", "60")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { target.Process.Kill(); target.Wait() }()
	time.Sleep(200 * time.Millisecond) // let it start its threads

	helper := exec.Command(tracee.Argv()[0], tracee.Argv()[1:]...)
	helper.Env = append(os.Environ(), "MACHTRACE_TEST_SAMPLER_FOR="+strconv.Itoa(target.Process.Pid))
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "SAMPLING" {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("sampler helper said %q", line)
	}
	time.Sleep(300 * time.Millisecond)
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	time.Sleep(50 * time.Millisecond)
	testutil.AssertRunning(t, target.Process.Pid)
	// And it makes progress: its CPU time grows.
	before := cpuTicks(t, target.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	if after := cpuTicks(t, target.Process.Pid); after <= before {
		t.Fatalf("target CPU time did not grow after the tracer died (%d -> %d ticks)", before, after)
	}
}

// cpuTicks returns utime+stime of pid from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return ut + st
}

// TestLazyStopMatchesFullStop checks the sampler's fast path: threads left
// asleep report the same registers a full stop reads.
func TestLazyStopMatchesFullStop(t *testing.T) {
	l := testutil.Launch(t, tracee.Sleep, "30")
	ls, ok := l.Target.Backend().(tracer.LazyStopper)
	if !ok {
		t.Skip("backend has no lazy stop")
	}
	time.Sleep(100 * time.Millisecond) // let the runtime's threads settle
	snapshot := func() map[tracer.ThreadID][2]uint64 {
		if err := l.Target.Suspend(); err != nil {
			t.Fatal(err)
		}
		defer l.Target.Resume()
		threads, err := l.Target.Threads()
		if err != nil {
			t.Fatal(err)
		}
		out := map[tracer.ThreadID][2]uint64{}
		for _, th := range threads {
			r, err := l.Target.ThreadState(th.ID, tracer.FlavorGeneral)
			if err != nil {
				t.Fatal(err)
			}
			out[th.ID] = [2]uint64{r.PC(), r.SP()}
		}
		return out
	}
	if err := ls.SetLazy(true); err != nil {
		t.Fatal(err)
	}
	var lazy map[tracer.ThreadID][2]uint64
	parked := 0
	for i := 0; i < 4; i++ {
		lazy = snapshot()
		_, parked = ls.LastStop()
	}
	if err := ls.SetLazy(false); err != nil {
		t.Fatal(err)
	}
	full := snapshot()
	if stopped, p := ls.LastStop(); p != 0 || stopped == 0 {
		t.Fatalf("after SetLazy(false) the stop parked %d and stopped %d threads", p, stopped)
	}
	if parked == 0 {
		t.Fatalf("no thread of an idle process was left asleep (%d threads)", len(lazy))
	}
	t.Logf("%d of %d threads left asleep", parked, len(lazy))
	for tid, want := range full {
		if got, ok := lazy[tid]; ok && got != want {
			// An idle Go runtime thread may legitimately have moved
			// between the two snapshots; only the sleepers must match.
			t.Logf("thread %d: lazy %#x, full %#x", tid, got, want)
		}
	}
	same := 0
	for tid, want := range full {
		if lazy[tid] == want {
			same++
		}
	}
	if same < parked {
		t.Errorf("only %d threads read the same PC/SP lazily and fully, but %d were left asleep", same, parked)
	}
}
