package mach_test

import (
	"errors"
	"fmt"

	"github.com/machtrace/machtrace/mach"
)

// A failed Mach call is a *KernError; errors.Is matches both the code and
// the semantic sentinel it maps onto.
func ExampleKernError() {
	err := fmt.Errorf("read 0x1000: %w", &mach.KernError{Op: "mach_vm_read_overwrite", Code: mach.KERN_INVALID_ADDRESS})
	fmt.Println(err)
	fmt.Println(errors.Is(err, mach.KERN_INVALID_ADDRESS), errors.Is(err, mach.ErrUnmapped), mach.IsThreadGone(err))
	// Output:
	// read 0x1000: mach_vm_read_overwrite: KERN_INVALID_ADDRESS (1): (os/kern) invalid address
	// true true false
}

// State structs marshal to the bytes the kernel (and KDP) use.
func ExampleARMThreadState64_MarshalBinary() {
	s := &mach.ARMThreadState64{Pc: 0x100003f20, Cpsr: 0x60000000}
	b, _ := s.MarshalBinary()
	fmt.Println(len(b), s.Count()*4)
	fmt.Printf("pc @256: % x\n", b[256:264])
	var back mach.ARMThreadState64
	fmt.Println(back.UnmarshalBinary(b) == nil && back == *s)
	// Output:
	// 272 272
	// pc @256: 20 3f 00 00 01 00 00 00
	// true
}
