package mach

import (
	"errors"
	"fmt"
	"testing"
)

func TestKernReturnNamesAndMessages(t *testing.T) {
	tests := []struct {
		code KernReturn
		val  int32
		name string
		msg  string
	}{
		{KERN_SUCCESS, 0, "KERN_SUCCESS", "(os/kern) successful"},
		{KERN_INVALID_ADDRESS, 1, "KERN_INVALID_ADDRESS", "(os/kern) invalid address"},
		{KERN_PROTECTION_FAILURE, 2, "KERN_PROTECTION_FAILURE", "(os/kern) protection failure"},
		{KERN_INVALID_ARGUMENT, 4, "KERN_INVALID_ARGUMENT", "(os/kern) invalid argument"},
		{KERN_FAILURE, 5, "KERN_FAILURE", "(os/kern) failure"},
		{KERN_NO_ACCESS, 8, "KERN_NO_ACCESS", "(os/kern) no access"},
		{KERN_ABORTED, 14, "KERN_ABORTED", "(os/kern) aborted"},
		{KERN_INVALID_RIGHT, 17, "KERN_INVALID_RIGHT", "(os/kern) invalid right"},
		{KERN_UREFS_OVERFLOW, 19, "KERN_UREFS_OVERFLOW", "(os/kern) urefs overflow"},
		{KERN_INVALID_SECURITY, 35, "KERN_INVALID_SECURITY", "(os/kern) invalid security"},
		{KERN_TERMINATED, 37, "KERN_TERMINATED", "(os/kern) object terminated"},
		{KERN_DENIED, 53, "KERN_DENIED", "(os/kern) denied by security policy"},
		{MACH_SEND_INVALID_DEST, 0x10000003, "MACH_SEND_INVALID_DEST", "(ipc/send) invalid destination port"},
		{MACH_SEND_INVALID_RIGHT, 0x1000000a, "MACH_SEND_INVALID_RIGHT", "(ipc/send) invalid port right"},
		{MACH_RCV_INTERRUPTED, 0x10004005, "MACH_RCV_INTERRUPTED", "(ipc/rcv) interrupted"},
		{MIG_BAD_ID, -303, "MIG_BAD_ID", "(ipc/mig) bad request message ID"},
		{MIG_SERVER_DIED, -308, "MIG_SERVER_DIED", "(ipc/mig) server died"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if int32(tt.code) != tt.val {
				t.Errorf("value %d, want %d", int32(tt.code), tt.val)
			}
			if tt.code.Name() != tt.name {
				t.Errorf("Name() = %q, want %q", tt.code.Name(), tt.name)
			}
			if tt.code.Message() != tt.msg {
				t.Errorf("Message() = %q, want %q", tt.code.Message(), tt.msg)
			}
			if want := fmt.Sprintf("%s (%d): %s", tt.name, tt.val, tt.msg); tt.code.Error() != want {
				t.Errorf("Error() = %q, want %q", tt.code.Error(), want)
			}
		})
	}
	// Every known KERN_* code 0..53 has a name and a message.
	for k := KERN_SUCCESS; k <= KERN_DENIED; k++ {
		if _, ok := kernTable[k]; !ok {
			t.Errorf("kern_return %d missing from the table", k)
		}
	}
	if got := KernReturn(0x1234).Error(); got != "kern_return(0x1234) (4660): unknown error code" {
		t.Errorf("unknown code: %q", got)
	}
}

func TestKernErrorMatching(t *testing.T) {
	err := fmt.Errorf("read 0x1000: %w", &KernError{Op: "mach_vm_read_overwrite", Code: KERN_INVALID_ADDRESS})
	if !errors.Is(err, KERN_INVALID_ADDRESS) {
		t.Error("errors.Is(err, KERN_INVALID_ADDRESS) = false")
	}
	if !errors.Is(err, ErrUnmapped) {
		t.Error("errors.Is(err, ErrUnmapped) = false")
	}
	if errors.Is(err, KERN_FAILURE) || errors.Is(err, ErrGone) {
		t.Error("matched the wrong sentinel")
	}
	var ke *KernError
	if !errors.As(err, &ke) || ke.Op != "mach_vm_read_overwrite" {
		t.Errorf("errors.As: %v", ke)
	}
	if want := "read 0x1000: mach_vm_read_overwrite: KERN_INVALID_ADDRESS (1): (os/kern) invalid address"; err.Error() != want {
		t.Errorf("Error() = %q", err.Error())
	}

	gone := &KernError{Op: "thread_get_state", Code: MACH_SEND_INVALID_DEST}
	if !errors.Is(gone, ErrGone) || !IsThreadGone(gone) {
		t.Error("MACH_SEND_INVALID_DEST is not gone")
	}
	for _, k := range []KernReturn{KERN_INVALID_ARGUMENT, KERN_TERMINATED, MACH_SEND_INVALID_DEST} {
		if !IsThreadGone(&KernError{Op: "thread_info", Code: k}) {
			t.Errorf("IsThreadGone(%v) = false", k)
		}
	}
	if IsThreadGone(&KernError{Op: "thread_info", Code: KERN_FAILURE}) {
		t.Error("KERN_FAILURE is not a dead thread")
	}
	if !errors.Is(&KernError{Op: "thread_set_state", Code: KERN_NO_ACCESS}, ErrProtection) {
		t.Error("KERN_NO_ACCESS should match ErrProtection")
	}
	if kernErr("x", 0) != nil {
		t.Error("kernErr(0) != nil")
	}
}
