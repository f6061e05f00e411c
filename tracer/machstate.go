package tracer

import (
	"fmt"

	"github.com/machtrace/machtrace/mach"
)

// This file converts between Mach thread-state structs (package mach's
// layout-exact types) and Registers. The macOS backend uses it; anything
// else that receives Mach state images can too.

// machKey names one (architecture, flavor) pair.
type machKey struct {
	arch   Arch
	flavor Flavor
}

// machFlavors maps the tracer's flavors onto Mach thread-state flavors.
var machFlavors = map[machKey]mach.StateFlavor{
	{ArchAMD64, FlavorGeneral}:   mach.X86_THREAD_STATE64,
	{ArchAMD64, FlavorFloat}:     mach.X86_FLOAT_STATE64,
	{ArchAMD64, FlavorDebug}:     mach.X86_DEBUG_STATE64,
	{ArchAMD64, FlavorException}: mach.X86_EXCEPTION_STATE64,
	{ArchARM64, FlavorGeneral}:   mach.ARM_THREAD_STATE64,
	{ArchARM64, FlavorFloat}:     mach.ARM_NEON_STATE64,
	{ArchARM64, FlavorDebug}:     mach.ARM_DEBUG_STATE64,
	{ArchARM64, FlavorException}: mach.ARM_EXCEPTION_STATE64,
}

// machLayouts holds one StructLayout per pair, built from package mach's
// field tables, so every Registers value of a flavor shares its Layout.
var machLayouts = func() map[machKey]*StructLayout {
	m := make(map[machKey]*StructLayout, len(machFlavors))
	for k, mf := range machFlavors {
		s, err := mach.NewState(k.arch.String(), mf)
		if err != nil {
			panic(err) // the table above names only known flavors
		}
		fields := make([]Field, len(s.Fields()))
		for i, f := range s.Fields() {
			fields[i] = Field{Name: f.Name, Offset: f.Offset, Size: f.Size}
		}
		m[k] = NewStructLayout(k.arch, k.flavor, int(s.Count())*4, fields)
	}
	return m
}()

// MachFlavor returns the Mach thread-state flavor that holds a tracer flavor
// on arch: x86_THREAD_STATE64 / ARM_THREAD_STATE64 for FlavorGeneral,
// x86_FLOAT_STATE64 / ARM_NEON_STATE64 for FlavorFloat, and the DEBUG and
// EXCEPTION states. FlavorSystem has no Mach counterpart.
func MachFlavor(arch Arch, f Flavor) (mach.StateFlavor, error) {
	mf, ok := machFlavors[machKey{arch, f}]
	if !ok {
		return 0, fmt.Errorf("%s %s state: %w", arch, f, mach.ErrUnsupportedState)
	}
	return mf, nil
}

// RegistersFromMach decodes a Mach thread-state struct of arch into
// Registers of flavor f.
func RegistersFromMach(arch Arch, f Flavor, s mach.State) (*Registers, error) {
	sl, ok := machLayouts[machKey{arch, f}]
	if !ok || machFlavors[machKey{arch, f}] != s.Flavor() {
		return nil, fmt.Errorf("%s %s state from Mach flavor %d: %w", arch, f, s.Flavor(), mach.ErrUnsupportedState)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return sl.Decode(b)
}

// MachStateFromRegisters encodes regs as a Mach thread-state struct. Bytes
// no register covers (reserved fields, the arm64 flags word) are taken from
// base, the state last read from the thread; base may be nil.
func MachStateFromRegisters(regs *Registers, base mach.State) (mach.State, error) {
	k := machKey{regs.Arch(), regs.Flavor()}
	sl, ok := machLayouts[k]
	if !ok {
		return nil, fmt.Errorf("%s %s state: %w", k.arch, k.flavor, mach.ErrUnsupportedState)
	}
	s, err := mach.NewState(k.arch.String(), machFlavors[k])
	if err != nil {
		return nil, err
	}
	b := make([]byte, sl.Size)
	if base != nil {
		if base.Flavor() != s.Flavor() {
			return nil, fmt.Errorf("base state is flavor %d, want %d", base.Flavor(), s.Flavor())
		}
		if b, err = base.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	if err := sl.Encode(regs, b); err != nil {
		return nil, err
	}
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return s, nil
}

// runStateFromMach maps a Mach TH_STATE_* value onto a RunState.
func runStateFromMach(s int32) RunState {
	switch s {
	case mach.TH_STATE_RUNNING:
		return StateRunning
	case mach.TH_STATE_STOPPED:
		return StateStopped
	case mach.TH_STATE_WAITING:
		return StateSleeping
	case mach.TH_STATE_UNINTERRUPTIBLE:
		return StateBlocked
	case mach.TH_STATE_HALTED:
		return StateHalted
	}
	return StateUnknown
}
