package gdbremote_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/tracer"
)

// guestHZ is CONFIG_HZ of Debian's cloud-amd64 kernel.
const guestHZ = 250

// TestQEMUSample samples the test VM's two vCPUs for 2 s at 200 Hz through
// the shared sampler, resolves the kernel samples with the kallsyms file and
// the slide found through the stub, and measures the guest's share of wall
// time twice: from the sampler's stop accounting, and from the guest's own
// clock (jiffies_64).
func TestQEMUSample(t *testing.T) {
	vm := testvm.Shared(t)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	sym, _, slide, err := gdbremote.KernelSymbols(tgt, vm.Kallsyms())
	if err != nil {
		t.Fatal(err)
	}
	jaddr, err := sym.Addr("jiffies_64")
	if err != nil {
		t.Fatal(err)
	}
	jiffies := func() uint64 {
		t.Helper()
		var b [8]byte
		if _, err := tgt.ReadMemory(jaddr, b[:]); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	j0, t0 := jiffies(), time.Now()
	prof, err := tracer.Sample(context.Background(), tgt, tracer.SampleOptions{Rate: 200, Duration: 2 * time.Second, MinRunGap: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	j1, wall := jiffies(), time.Since(t0)
	st := prof.Stats
	var kernel, resolved, user int
	funcs := map[string]int{}
	for _, s := range prof.Samples {
		pc := s.Stack[0]
		if !isKernelAddr(pc) {
			user++
			continue
		}
		kernel++
		if loc := sym.Lookup(pc); loc.Known() {
			resolved++
			funcs[loc.Func]++
		}
	}
	guestClock := float64(j1-j0) / guestHZ / wall.Seconds()
	t.Logf("slide %#x; %d ticks due, %d taken (%d late, %d missed), %d samples: %d kernel (%d resolved), %d user",
		slide.Slide, st.Ticks, st.Taken, st.Late, st.Missed, len(prof.Samples), kernel, resolved, user)
	t.Logf("guest share of wall time: %.1f%% by the sampler (stopped %v of %v, longest stop %v); %.1f%% by the guest's jiffies",
		100*(1-st.StoppedFraction()), st.Stopped.Round(time.Millisecond), st.Wall.Round(time.Millisecond), st.MaxStop.Round(time.Microsecond), 100*guestClock)
	top, n := "", 0
	for f, c := range funcs {
		if c > n {
			top, n = f, c
		}
	}
	t.Logf("top kernel function: %s (%d samples)", top, n)
	if st.Taken < 100 {
		t.Errorf("only %d halts in 2 s at 200 Hz", st.Taken)
	}
	if kernel == 0 || float64(resolved) < 0.95*float64(kernel) {
		t.Errorf("%d of %d kernel samples resolved, want at least 95%%", resolved, kernel)
	}
	if share := 1 - st.StoppedFraction(); share <= 0 || share > 1 {
		t.Errorf("guest share %.3f out of range", share)
	}
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := vm.Status(); s != "running" {
		t.Errorf("QMP status after detach = %q (%v), want running", s, err)
	}
}
