package kdpbridge

import (
	"encoding/binary"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// TestStateImages checks the thread-state images against kdp-protocol.md
// section 8: sizes, and registers at their Mach offsets whatever the
// backend's layout calls them.
func TestStateImages(t *testing.T) {
	for _, tt := range []struct {
		sl   *stateLayout
		size int
	}{
		{x86ThreadState64, kdp.X86ThreadState64Size},
		{x86FloatState64, kdp.X86FloatState64Size},
		{armThreadState64, kdp.ARMThreadState64Size},
		{armNeonState64, kdp.ARMNeonState64Size},
	} {
		if tt.sl.size != tt.size {
			t.Errorf("%s %s image is %d bytes, want %d", tt.sl.arch, tt.sl.flavor, tt.sl.size, tt.size)
		}
	}

	// Linux-named registers (user_regs_struct order) into the Mach image.
	r := tracer.NewRegisters(fakeLayout)
	for i := 0; i < r.Len(); i++ {
		r.SetAt(i, 0x1000+uint64(i))
	}
	img := x86ThreadState64.encode(r)
	at := func(off int) uint64 { return binary.LittleEndian.Uint64(img[off:]) }
	for name, off := range map[string]int{"rax": 0, "rdi": 32, "rsi": 40, "rbp": 48, "rsp": 56, "r8": 64, "r15": 120, "rip": 128, "rflags": 136, "cs": 144, "fs": 152, "gs": 160} {
		want, _ := r.Get(name)
		if got := at(off); got != want {
			t.Errorf("%s at %d = %#x, want %#x", name, off, got, want)
		}
	}
	// And back: the Mach layout reads the same values.
	back := x86ThreadState64.decode(img)
	if back.PC() != r.PC() || back.SP() != r.SP() || back.FP() != r.FP() {
		t.Errorf("decode: pc %#x sp %#x fp %#x", back.PC(), back.SP(), back.FP())
	}
	// apply leaves cs alone and writes the rest.
	img2 := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(img2[0:], 5)
	binary.LittleEndian.PutUint64(img2[144:], 0x99)
	dst := r.Clone()
	x86ThreadState64.apply(dst, img2)
	if v, _ := dst.Get("rax"); v != 5 {
		t.Errorf("rax %#x after apply", v)
	}
	if v, _ := dst.Get("cs"); v != 0x1000+17 {
		t.Errorf("cs changed to %#x", v)
	}

	arm := armThreadState64.decode(make([]byte, kdp.ARMThreadState64Size))
	if arm.Layout().Index("pc") < 0 || arm.Layout().Index("cpsr") < 0 || arm.Layout().Index("flags") >= 0 {
		t.Errorf("arm64 layout: %v", arm.Layout().Descs())
	}
}
