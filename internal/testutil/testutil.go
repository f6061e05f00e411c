// Package testutil has the helpers machtrace's end-to-end tests share:
// launching a tracee program under the tracer and waiting until it is ready.
package testutil

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

// SkipIfUnsupported skips the test when err says the platform lacks the
// feature (errors.ErrUnsupported), and fails it on any other error.
func SkipIfUnsupported(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, errors.ErrUnsupported) {
		tb.Skipf("unsupported here: %v", err)
	}
	tb.Fatal(err)
}

// Launched is a tracee started under the tracer.
type Launched struct {
	Target tracer.Target
	PID    int
	Stdout *bufio.Reader
}

// Launch starts the tracee program stopped at its first instruction, resumes
// it and waits until it prints tracee.Ready. The target is closed (detached)
// and the process killed when the test ends.
func Launch(tb testing.TB, program string, args ...string) *Launched {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	t, err := tracer.Launch(tracee.Argv(), tracer.LaunchOptions{Env: tracee.Env(program, args...), Stdout: w, Stderr: os.Stderr})
	w.Close()
	SkipIfUnsupported(tb, err)
	l := &Launched{Target: t, PID: tracer.PIDOf(t), Stdout: bufio.NewReader(r)}
	tb.Cleanup(func() {
		t.Close()
		if p, err := os.FindProcess(l.PID); err == nil {
			p.Kill()
		}
		if w, ok := t.Backend().(tracer.Waiter); ok {
			w.Wait()
		}
		r.Close()
	})
	if !t.Suspended() {
		tb.Fatal("a launched target must start suspended")
	}
	if err := t.Resume(); err != nil {
		tb.Fatal(err)
	}
	WaitReady(tb, l.Stdout)
	return l
}

// WaitReady reads r until the tracee says it is ready (10 s at most).
func WaitReady(tb testing.TB, r *bufio.Reader) {
	tb.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) == tracee.Ready {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("tracee ended before it was ready: %v", err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatal("tracee not ready after 10s")
	}
}

// TaskStates returns the state letter of every thread of pid from /proc
// (Linux only; nil elsewhere).
func TaskStates(pid int) map[string]byte {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	out := map[string]byte{}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			out[e.Name()] = s[i+2]
		}
	}
	return out
}

// AssertRunning fails the test if any thread of pid is in a tracing stop
// ('t') or a job-control stop ('T'), looking at /proc a few times over 100 ms
// (Linux only; elsewhere it checks nothing).
func AssertRunning(tb testing.TB, pid int) {
	tb.Helper()
	for i := 0; i < 5; i++ {
		for tid, st := range TaskStates(pid) {
			if st == 't' || st == 'T' {
				tb.Fatalf("thread %s of pid %d is stopped (%c) after the tracer let go", tid, pid, st)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
