package tracer_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

// BenchmarkSampleLoop measures one iteration of the sampler's loop — suspend
// every thread, read each one's general registers, resume — on targets with
// 1, 4 and 16 busy threads (plus the Go runtime's own, mostly idle, threads).
// It reports the cost per thread per sample, the figure to compare with a
// minimal C loop (PTRACE_INTERRUPT, wait, GETREGS, CONT). Modes: stop-all
// stops every thread; lazy leaves asleep the threads still blocked where last
// read (the sampler's default); lazy+unwind also walks frame pointers.
// BENCH_REALTIME=1 runs the loop at SCHED_FIFO (root); BENCH_PID attaches to
// that process instead (scripts/bench-sample.sh).
func BenchmarkSampleLoop(b *testing.B) {
	for _, busy := range []int{1, 4, 16} {
		for _, mode := range []string{"stop-all", "lazy", "lazy+unwind"} {
			b.Run(fmt.Sprintf("busy=%d/%s", busy, mode), func(b *testing.B) { benchLoop(b, busy, mode) })
		}
	}
}

func benchLoop(b *testing.B, busy int, mode string) {
	var t tracer.Target
	if pid := os.Getenv("BENCH_PID"); pid != "" {
		// scripts/bench-sample.sh: the same target as its C reference loop.
		n, _ := strconv.Atoi(pid)
		at, err := tracer.Attach(n)
		if err != nil {
			b.Fatal(err)
		}
		defer at.Close()
		t, busy = at, 0
	} else {
		t = testutil.Launch(b, tracee.SpinThreads, fmt.Sprint(busy), "600").Target
	}
	// The busy goroutines lock their OS threads one by one as the Go
	// scheduler runs them: wait until they all exist.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		threads, err := t.Threads()
		if err != nil {
			b.Fatal(err)
		}
		if len(threads) > busy {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("tracee has %d threads after 10s, want more than %d", len(threads), busy)
		}
	}
	unwind := mode == "lazy+unwind"
	if ls, ok := t.Backend().(tracer.LazyStopper); ok && mode != "stop-all" {
		ls.SetLazy(true)
	}
	if rt, ok := t.Backend().(tracer.Realtimer); ok && os.Getenv("BENCH_REALTIME") != "" {
		if err := rt.SetRealtime(true); err != nil {
			b.Fatal(err)
		}
		defer rt.SetRealtime(false)
	}
	lister, _ := t.Backend().(tracer.ThreadLister)
	var buf [16]byte
	read := func(addr uint64) (uint64, uint64, bool) {
		if n, err := t.ReadMemory(addr, buf[:]); err != nil || n != 16 {
			return 0, 0, false
		}
		return le(buf[:8]), le(buf[8:]), true
	}
	threadSamples, frames, errs := 0, 0, 0
	var lastErr error
	loop := func() {
		for i := 0; i < b.N; i++ {
			if err := t.Suspend(); err != nil {
				b.Fatal(err)
			}
			tids, err := lister.ThreadIDs()
			if err != nil {
				b.Fatal(err)
			}
			for _, tid := range tids {
				r, err := t.ThreadState(tid, tracer.FlavorGeneral)
				if err != nil {
					errs++
					lastErr = err
					continue
				}
				threadSamples++
				if unwind {
					frames += len(tracer.UnwindFramePointers(r, read, 64, nil))
				}
			}
			if err := t.Resume(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if lister == nil {
		b.Skip("backend lists no thread ids")
	}
	b.ResetTimer()
	if tb, ok := t.Backend().(tracer.ThreadBound); ok {
		tb.Run(loop)
	} else {
		loop()
	}
	b.StopTimer()
	if errs > 0 {
		b.Logf("%d thread reads failed, last: %v", errs, lastErr)
	}
	if threadSamples > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(threadSamples)/1000, "us/thread")
		b.ReportMetric(float64(threadSamples)/float64(b.N), "threads")
		if unwind {
			b.ReportMetric(float64(frames)/float64(threadSamples), "frames/thread")
		}
	}
}

func le(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
