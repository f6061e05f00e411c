// Package gdbremote is a client of the GDB remote serial protocol (RSP) as
// hypervisor stubs speak it (QEMU's -gdb, VMware's debugStub,
// Virtualization.framework's GDB stub), and a tracer.Backend on top of it, so
// a virtual machine's kernel is a machtrace target: one thread per vCPU,
// registers by flavor (control registers as tracer.FlavorSystem), memory,
// breakpoints, and halting at will for sampling.
//
// The client follows what QEMU really sends, not only what the protocol
// document allows:
//
//   - acks stay on (QEMU answers QStartNoAckMode with an empty reply), so
//     every packet is acknowledged in both directions;
//   - a stop reply can arrive unasked at connect, even before the ack of the
//     client's first packet, and is recorded rather than mistaken for an
//     answer;
//   - the register layout is read from qXfer:features:read:target.xml and its
//     includes, never hard-coded (QEMU also refuses p/P until target.xml has
//     been read on the connection);
//   - any byte sent while the guest runs stops it and is discarded by QEMU,
//     so the client tracks the run state and halts (0x03) before talking;
//   - detach uses "D;pid" once multiprocess is negotiated, so the guest is
//     never left paused; a bare "D" is the fallback.
//
// Every read has a deadline: a stub that stops answering yields a
// *TimeoutError (errors.Is(err, os.ErrDeadlineExceeded)) and the connection
// is closed, never a hang.
package gdbremote
