package gdbremote_test

import (
	"testing"

	"github.com/machtrace/machtrace/gdbremote"
	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/tracer"
)

// BenchmarkQEMUHaltReadContinue measures one sampling cycle against the
// test VM: halt (0x03 and the stop reply), read every vCPU's general
// registers, continue. It runs back to back, which starves the guest; the
// sampler's MinRunGap exists for that.
func BenchmarkQEMUHaltReadContinue(b *testing.B) {
	vm := testvm.Shared(b)
	tgt, err := gdbremote.OpenTarget(vm.GDBAddr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tgt.Close()
	ids, err := tgt.Backend().(*gdbremote.Backend).ThreadIDs()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := tgt.Suspend(); err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if _, err := tgt.ThreadState(id, tracer.FlavorGeneral); err != nil {
				b.Fatal(err)
			}
		}
		if err := tgt.Resume(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)), "vCPUs")
}
