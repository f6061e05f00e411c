//go:build unix

package cli

// End-to-end tests of the commands on real local processes: the test binary
// re-executes itself as the tracee (tracee programs) and as machtrace itself
// (envRunCLI), so signals and exit codes are those of the real command.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/google/pprof/profile"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

func funcName(f any) string { return runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name() }

// startTracee starts a tracee program untraced and kills it when the test ends.
func startTracee(t *testing.T, program string, args ...string) *exec.Cmd {
	cmd, _ := startTraceeOut(t, program, args...)
	return cmd
}

// startTraceeOut is startTracee that also returns the tracee's stdout.
func startTraceeOut(t *testing.T, program string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(tracee.Argv()[0], tracee.Argv()[1:]...)
	cmd.Env = tracee.Env(program, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	r := bufio.NewReader(out)
	testutil.WaitReady(t, r)
	return cmd, r
}

func TestCLISampleLaunched(t *testing.T) {
	// The launched command is this test binary; the environment selects the
	// tracee program it runs.
	t.Setenv("MACHTRACE_TRACEE", tracee.Split)
	t.Setenv("MACHTRACE_TRACEE_ARGS", "3")
	dir := t.TempDir()
	pprofFile, svgFile, foldedFile := dir+"/cpu.pb.gz", dir+"/flame.svg", dir+"/folded.txt"
	args := append([]string{"sample", "-F", "300", "-d", "1s", "--threads", "-o", pprofFile, "--flamegraph", svgFile, "--folded", foldedFile, "--"}, tracee.Argv()...)
	out, errOut, err := runCLI(t, context.Background(), args...)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	t.Logf("\n%s", out)
	// The profile files hold the hot functions too.
	pf, err := os.Open(pprofFile)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	prof, err := profile.Parse(pf)
	if err != nil {
		t.Fatalf("pprof output does not parse: %v", err)
	}
	hot := false
	for _, fn := range prof.Function {
		hot = hot || fn.Name == funcName(tracee.HotA)
	}
	if !hot || len(prof.Sample) == 0 {
		t.Errorf("pprof profile: %d samples, HotA present %v", len(prof.Sample), hot)
	}
	for _, file := range []string{svgFile, foldedFile} {
		b, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(b), funcName(tracee.HotA)) {
			t.Errorf("%s lacks HotA (%v)", file, err)
		}
	}
	for _, want := range []string{funcName(tracee.HotA), funcName(tracee.HotB), "SELF%", "TOTAL%", "TID", "thread samples", "resolved to a symbol"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestCLIRegsAndSetRegByPID(t *testing.T) {
	cmd, stdout := startTraceeOut(t, tracee.KnownRegs)
	pid := strconv.Itoa(cmd.Process.Pid)
	var dumps []threadRegs
	var spinner *threadRegs
	known := tracee.KnownRegisters
	for try := 0; try < 20 && spinner == nil; try++ {
		out, errOut, err := runCLI(t, context.Background(), "regs", "-p", pid, "--json")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if err := json.Unmarshal([]byte(out), &dumps); err != nil {
			t.Fatalf("regs --json: %v\n%s", err, out)
		}
		for i, d := range dumps {
			if d.States["general"][anyKnown()] == fmt.Sprintf("0x%016x", known[anyKnown()]) {
				spinner = &dumps[i]
			}
		}
	}
	if spinner == nil {
		t.Fatal("no thread shows the known register values")
	}
	for name, v := range known {
		if got, want := spinner.States["general"][name], fmt.Sprintf("0x%016x", v); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	// Without --write nothing is written.
	reg := tracee.ControlRegister
	_, _, err := runCLI(t, context.Background(), "setreg", "-p", pid, "--tid", fmt.Sprint(spinner.TID), reg+"=42")
	var fe *FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--write") {
		t.Fatalf("setreg without --write: %v, want a usage error naming --write", err)
	}
	out, errOut, err := runCLI(t, context.Background(), "setreg", "-p", pid, "--tid", fmt.Sprint(spinner.TID), reg+"=42", "--write")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, reg+" = 0x000000000000002a") {
		t.Errorf("setreg output %q does not confirm the write", out)
	}
	// The tracee leaves its loop and reports the register's value. (Its
	// exit status may already have been reaped by the tracer, which runs in
	// this process, the tracee's parent.)
	line, _ := stdout.ReadString('\n')
	if got := strings.TrimSpace(line); got != tracee.SpinReturned+" 42" {
		t.Fatalf("tracee said %q, want %q", got, tracee.SpinReturned+" 42")
	}
}

func anyKnown() string {
	if runtime.GOARCH == "arm64" {
		return "x5"
	}
	return "rbx"
}

func TestCLIThreadsNamed(t *testing.T) {
	if !tracee.ThreadNamesSupported {
		t.Skip("tracee cannot name threads here")
	}
	cmd := startTracee(t, tracee.NamedThreads)
	out, errOut, err := runCLI(t, context.Background(), "threads", "-p", strconv.Itoa(cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for i := 0; i < 8; i++ {
		if !strings.Contains(out, fmt.Sprintf("mt-worker-%d", i)) {
			t.Errorf("threads output lacks mt-worker-%d:\n%s", i, out)
		}
	}
}

func TestCLIMemAndDisasm(t *testing.T) {
	cmd := startTracee(t, tracee.Sleep, "30")
	pid := strconv.Itoa(cmd.Process.Pid)
	sym := funcName(tracee.HotA)
	out, errOut, err := runCLI(t, context.Background(), "disasm", "-p", pid, sym, "-n", "6")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, sym+":") || strings.Count(out, "\n") < 6 {
		t.Errorf("disasm of %s:\n%s", sym, out)
	}
	out, errOut, err = runCLI(t, context.Background(), "mem", "-p", pid, sym, "32")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("mem %s 32: want 2 hexdump lines:\n%s", sym, out)
	}
	_, _, err = runCLI(t, context.Background(), "mem", "-p", pid, "0x10", "8")
	if !errors.Is(err, tracer.ErrUnmapped) {
		t.Errorf("mem at 0x10: %v, want ErrUnmapped", err)
	}
	_, _, err = runCLI(t, context.Background(), "mem", "-p", pid, "no.such.symbol")
	if err == nil || !strings.Contains(err.Error(), "no symbol") {
		t.Errorf("mem at an unknown symbol: %v", err)
	}
	testutil.AssertRunning(t, cmd.Process.Pid)
}

func TestCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"sample"}, true, "no target"},
		{[]string{"sample", "-p", "1", "--", "true"}, true, "one target only"},
		{[]string{"regs", "-p", "2147483600"}, false, "no such process"},
		{[]string{"sample", "-F", "0", "-p", "1"}, true, "-F 0"},
		{[]string{"mem", "-p", "1"}, true, "ADDR"},
		{[]string{"sample", "--target", "ftp://x:1"}, true, "unknown scheme"},
	} {
		_, _, err := runCLI(t, context.Background(), tc.args...)
		var fe *FlagError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &fe) != tc.usage {
			t.Errorf("machtrace %s: %v (usage error %v), want %q (usage error %v)", strings.Join(tc.args, " "), err, errors.As(err, &fe), tc.want, tc.usage)
		}
	}
}

// TestCLISignalsDetach runs machtrace as a child process sampling a running
// target, interrupts it with SIGINT (Ctrl-C) or SIGTERM, and checks that it
// prints its result, exits cleanly, and leaves the target running.
func TestCLISignalsDetach(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc task states")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			target := startTracee(t, tracee.SpinThreads, "2", "60")
			cli := exec.Command(os.Args[0], "sample", "-p", strconv.Itoa(target.Process.Pid), "-F", "200")
			cli.Env = append(os.Environ(), envRunCLI+"=1")
			var stdout bytes.Buffer
			cli.Stdout = &stdout
			stderr, err := cli.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(stderr).ReadString('\n')
			if !strings.HasPrefix(line, "sampling pid") {
				cli.Process.Kill()
				cli.Wait()
				t.Fatalf("machtrace said %q", line)
			}
			time.Sleep(700 * time.Millisecond)
			cli.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cli.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("machtrace exited with %v after %v\n%s", err, sig, stdout.String())
				}
			case <-time.After(10 * time.Second):
				cli.Process.Kill()
				t.Fatalf("machtrace did not exit within 10s of %v", sig)
			}
			out := stdout.String()
			if !strings.Contains(out, "interrupted") || !strings.Contains(out, "SELF%") {
				t.Errorf("after %v machtrace printed:\n%s", sig, out)
			}
			testutil.AssertRunning(t, target.Process.Pid)
		})
	}
}

// runCLIChild runs machtrace (this test binary in CLI mode) as a child
// process, optionally as another user, and returns its exit code and stderr.
func runCLIChild(t *testing.T, cred *syscall.Credential, args ...string) (int, string) {
	t.Helper()
	exe := os.Args[0]
	if cred != nil {
		// The build directory is private to root: run a world-readable copy.
		dir, err := os.MkdirTemp("", "machtrace-cli-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		exe = dir + "/machtrace"
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envRunCLI+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// TestCLIPermissionErrors provokes real EPERMs and checks that machtrace
// names the rule that refused the attach.
func TestCLIPermissionErrors(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to create the situations")
	}
	target := startTracee(t, tracee.Sleep, "30")
	pid := strconv.Itoa(target.Process.Pid)

	t.Run("other user", func(t *testing.T) {
		code, stderr := runCLIChild(t, &syscall.Credential{Uid: 65534, Gid: 65534}, "regs", "-p", pid)
		if code != 1 || !strings.Contains(stderr, "permission denied") || !strings.Contains(stderr, "belongs to uid 0") {
			t.Fatalf("exit %d, stderr %q: want a permission error naming the owner", code, stderr)
		}
	})
	t.Run("already traced", func(t *testing.T) {
		tg, err := tracer.Attach(target.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		code, stderr := runCLIChild(t, nil, "regs", "-p", pid)
		if code != 1 || !strings.Contains(stderr, "already traced by pid "+strconv.Itoa(os.Getpid())) {
			t.Fatalf("exit %d, stderr %q: want the tracer's pid named", code, stderr)
		}
	})
	testutil.AssertRunning(t, target.Process.Pid)
}
