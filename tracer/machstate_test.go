package tracer

import (
	"errors"
	"testing"

	"github.com/machtrace/machtrace/mach"
)

func TestMachStateRoundTrip(t *testing.T) {
	x := &mach.X86ThreadState64{Rax: 1, Rbp: 0x7ffe_0000_1000, Rsp: 0x7ffe_0000_0ff0, Rip: 0x1_0000_3f20, Rflags: 0x246, Gs: 7}
	regs, err := RegistersFromMach(ArchAMD64, FlavorGeneral, x)
	if err != nil {
		t.Fatal(err)
	}
	if regs.PC() != 0x1_0000_3f20 || regs.SP() != 0x7ffe_0000_0ff0 || regs.FP() != 0x7ffe_0000_1000 {
		t.Errorf("pc/sp/fp = %#x/%#x/%#x", regs.PC(), regs.SP(), regs.FP())
	}
	if v, _ := regs.Get("rflags"); v != 0x246 {
		t.Errorf("rflags = %#x", v)
	}
	if err := regs.Set("rax", 42); err != nil {
		t.Fatal(err)
	}
	s, err := MachStateFromRegisters(regs, x)
	if err != nil {
		t.Fatal(err)
	}
	got := s.(*mach.X86ThreadState64)
	want := *x
	want.Rax = 42
	if *got != want {
		t.Errorf("encoded %+v\nwant %+v", *got, want)
	}

	a := &mach.ARMThreadState64{Fp: 0x16f_dff_000, Lr: 0x1_0000_1234, Sp: 0x16f_dfe_ff0, Pc: 0x1_0000_4000, Cpsr: 0x6000_0000, Flags: 1}
	a.X[28] = 28
	ar, err := RegistersFromMach(ArchARM64, FlavorGeneral, a)
	if err != nil {
		t.Fatal(err)
	}
	if ar.PC() != a.Pc || ar.LR() != a.Lr || ar.FP() != a.Fp {
		t.Errorf("arm64 pc/lr/fp %#x %#x %#x", ar.PC(), ar.LR(), ar.FP())
	}
	if v, ok := ar.Get("x29"); !ok || v != a.Fp {
		t.Errorf("x29 alias = %#x, %v", v, ok)
	}
	back, err := MachStateFromRegisters(ar, a)
	if err != nil {
		t.Fatal(err)
	}
	if *back.(*mach.ARMThreadState64) != *a {
		t.Errorf("arm64 round trip %+v", back)
	}
	// Without a base the flags word is zero; registers still round-trip.
	back, _ = MachStateFromRegisters(ar, nil)
	if b := back.(*mach.ARMThreadState64); b.Pc != a.Pc || b.Flags != 0 {
		t.Errorf("no base: %+v", b)
	}
}

func TestMachStateVectors(t *testing.T) {
	n := &mach.ARMNeonState64{Fpsr: 0x10, Fpcr: 0x20}
	n.V[31][15] = 0xee
	r, err := RegistersFromMach(ArchARM64, FlavorFloat, n)
	if err != nil {
		t.Fatal(err)
	}
	i := r.Layout().Index("v31")
	if i < 0 || r.BytesAt(i)[15] != 0xee || len(r.BytesAt(i)) != 16 {
		t.Errorf("v31 = % x", r.BytesAt(i))
	}
	f := &mach.X86FloatState64{Mxcsr: 0x1f80}
	f.Xmm[3][0] = 3
	fr, err := RegistersFromMach(ArchAMD64, FlavorFloat, f)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fr.Get("mxcsr"); v != 0x1f80 {
		t.Errorf("mxcsr = %#x", v)
	}
	if v, _ := fr.Get("xmm3"); v != 3 {
		t.Errorf("xmm3 = %#x", v)
	}
}

func TestMachFlavorTable(t *testing.T) {
	tests := []struct {
		arch Arch
		f    Flavor
		want mach.StateFlavor
	}{
		{ArchAMD64, FlavorGeneral, mach.X86_THREAD_STATE64},
		{ArchAMD64, FlavorFloat, mach.X86_FLOAT_STATE64},
		{ArchAMD64, FlavorDebug, mach.X86_DEBUG_STATE64},
		{ArchAMD64, FlavorException, mach.X86_EXCEPTION_STATE64},
		{ArchARM64, FlavorGeneral, mach.ARM_THREAD_STATE64},
		{ArchARM64, FlavorFloat, mach.ARM_NEON_STATE64},
		{ArchARM64, FlavorDebug, mach.ARM_DEBUG_STATE64},
		{ArchARM64, FlavorException, mach.ARM_EXCEPTION_STATE64},
	}
	for _, tt := range tests {
		got, err := MachFlavor(tt.arch, tt.f)
		if err != nil || got != tt.want {
			t.Errorf("MachFlavor(%s, %s) = %d, %v; want %d", tt.arch, tt.f, got, err, tt.want)
		}
	}
	if _, err := MachFlavor(ArchARM64, FlavorSystem); !errors.Is(err, mach.ErrUnsupportedState) {
		t.Errorf("system flavor: %v", err)
	}
	if _, err := RegistersFromMach(ArchARM64, FlavorGeneral, &mach.X86ThreadState64{}); !errors.Is(err, mach.ErrUnsupportedState) {
		t.Errorf("mismatched struct: %v", err)
	}
	if runStateFromMach(mach.TH_STATE_WAITING) != StateSleeping || runStateFromMach(99) != StateUnknown {
		t.Error("run states")
	}
}
