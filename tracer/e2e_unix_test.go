//go:build unix

package tracer_test

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

// TestSignalsReachTarget checks that signals sent to a traced target are
// delivered to it, while it runs and while it is being sampled.
func TestSignalsReachTarget(t *testing.T) {
	l := testutil.Launch(t, tracee.SignalEcho)
	got := make(chan string, 8)
	go func() {
		for {
			line, err := l.Stdout.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			got <- strings.TrimSpace(line)
		}
	}()
	expect := func(what string) {
		t.Helper()
		select {
		case line := <-got:
			if line != what {
				t.Fatalf("tracee said %q, want %q", line, what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("tracee did not say %q within 5s: the signal was not delivered", what)
		}
	}
	syscall.Kill(l.PID, syscall.SIGUSR1)
	expect("GOT user defined signal 1")
	done := make(chan error, 1)
	go func() {
		_, err := tracer.Sample(context.Background(), l.Target, tracer.SampleOptions{Rate: 500, Duration: time.Second})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(l.PID, syscall.SIGTERM)
	expect("GOT terminated")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestJobControlStopSurvivesSampling checks that a target stopped with
// SIGSTOP by its user stays stopped while it is sampled and after the
// tracer detaches, and runs again on SIGCONT.
func TestJobControlStopSurvivesSampling(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc task states")
	}
	target := exec.Command(tracee.Argv()[0], tracee.Argv()[1:]...)
	target.Env = tracee.Env(tracee.SpinThreads, "2", "60")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { target.Process.Kill(); target.Wait() }()
	time.Sleep(200 * time.Millisecond)
	pid := target.Process.Pid
	tg, err := tracer.Attach(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if _, err := tracer.Sample(context.Background(), tg, tracer.SampleOptions{Rate: 200, Duration: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGSTOP)
	time.Sleep(100 * time.Millisecond)
	before := cpuTicks(t, pid)
	prof, err := tracer.Sample(context.Background(), tg, tracer.SampleOptions{Rate: 200, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if after := cpuTicks(t, pid); after > before+2 {
		t.Errorf("a SIGSTOPped target ran while sampled: CPU ticks %d -> %d (%d samples)", before, after, prof.Stats.Samples)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for tid, st := range testutil.TaskStates(pid) {
		if st != 'T' {
			t.Errorf("after detach, thread %s of the SIGSTOPped target is in state %c, want T", tid, st)
		}
	}
	syscall.Kill(pid, syscall.SIGCONT)
	time.Sleep(100 * time.Millisecond)
	testutil.AssertRunning(t, pid)
	c0 := cpuTicks(t, pid)
	time.Sleep(300 * time.Millisecond)
	if c1 := cpuTicks(t, pid); c1 <= c0 {
		t.Errorf("target did not run after SIGCONT (%d -> %d ticks)", c0, c1)
	}
}
