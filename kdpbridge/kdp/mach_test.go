package kdp_test

import (
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/mach"
)

// TestFlavorsMatchMach checks the codec's flavor numbers and image sizes
// against package mach's thread-state structs, which are asserted against
// Apple's headers.
func TestFlavorsMatchMach(t *testing.T) {
	for _, tt := range []struct {
		cpu    uint32
		flavor uint32
		state  mach.State
	}{
		{kdp.CPUTypeX86_64, kdp.X86ThreadState64, &mach.X86ThreadState64{}},
		{kdp.CPUTypeX86_64, kdp.X86FloatState64, &mach.X86FloatState64{}},
		{kdp.CPUTypeX86_64, kdp.X86ExceptionState64, &mach.X86ExceptionState64{}},
		{kdp.CPUTypeX86_64, kdp.X86DebugState64, &mach.X86DebugState64{}},
		{kdp.CPUTypeARM64, kdp.ARMThreadState64, &mach.ARMThreadState64{}},
		{kdp.CPUTypeARM64, kdp.ARMExceptionState64, &mach.ARMExceptionState64{}},
		{kdp.CPUTypeARM64, kdp.ARMDebugState64, &mach.ARMDebugState64{}},
		{kdp.CPUTypeARM64, kdp.ARMNeonState64, &mach.ARMNeonState64{}},
	} {
		size, ok := kdp.FlavorSize(tt.cpu, tt.flavor)
		if !ok || uint32(tt.state.Flavor()) != tt.flavor || uint32(size) != tt.state.Count()*4 {
			t.Errorf("%T: kdp flavor %d size %d (%v), mach flavor %d size %d", tt.state, tt.flavor, size, ok, tt.state.Flavor(), tt.state.Count()*4)
		}
	}
}
