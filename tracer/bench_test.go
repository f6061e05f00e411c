package tracer_test

import (
	"fmt"
	"testing"

	"github.com/machtrace/machtrace/internal/testutil"
	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/tracer"
)

// BenchmarkSampleLoop measures one iteration of the sampler's loop — suspend
// every thread, read each one's general registers, resume — on targets with
// 1, 4 and 16 busy threads (plus the Go runtime's own, mostly idle, threads).
// It reports the cost per thread per sample, the figure to compare with a
// minimal C loop (PTRACE_INTERRUPT, wait, GETREGS, CONT).
func BenchmarkSampleLoop(b *testing.B) {
	for _, busy := range []int{1, 4, 16} {
		for _, unwind := range []bool{false, true} {
			name := fmt.Sprintf("busy=%d/unwind=%v", busy, unwind)
			b.Run(name, func(b *testing.B) { benchLoop(b, busy, unwind) })
		}
	}
}

func benchLoop(b *testing.B, busy int, unwind bool) {
	l := testutil.Launch(b, tracee.SpinThreads, fmt.Sprint(busy), "600")
	t := l.Target
	var buf [16]byte
	read := func(addr uint64) (uint64, uint64, bool) {
		if n, err := t.ReadMemory(addr, buf[:]); err != nil || n != 16 {
			return 0, 0, false
		}
		return le(buf[:8]), le(buf[8:]), true
	}
	threadSamples, frames := 0, 0
	loop := func() {
		for i := 0; i < b.N; i++ {
			if err := t.Suspend(); err != nil {
				b.Fatal(err)
			}
			tids, err := t.Threads()
			if err != nil {
				b.Fatal(err)
			}
			for _, th := range tids {
				r, err := t.ThreadState(th.ID, tracer.FlavorGeneral)
				if err != nil {
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
	b.ResetTimer()
	if tb, ok := t.Backend().(tracer.ThreadBound); ok {
		tb.Run(loop)
	} else {
		loop()
	}
	b.StopTimer()
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
