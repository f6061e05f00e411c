// Package kdpbridge speaks Apple's Kernel Debugging Protocol (KDP) over UDP,
// in both directions, on top of the wire codec in package kdp.
//
// Client is a KDP client that behaves like LLDB's kdp-remote: LLDB's
// handshake, one socket for replies and exception notifications, every
// request retransmitted with the same sequence number, notifications
// acknowledged as they arrive.
//
// Dial and Backend make a KDP connection a tracer.Target, so machtrace's
// commands read a halted XNU kernel (threads are CPUs; registers, memory,
// disassembly). A running kernel cannot be halted over KDP: Suspend then fails
// with tracer.ErrCannotHalt, and SampleByBreakpoint samples it through a
// breakpoint trigger instead.
//
// Server is the other side: a KDP stub that serves any tracer.Target, so
// that LLDB's kdp-remote debugs a Linux process (or a GDB-stub kernel) as if
// it were an XNU kernel. It follows XNU's state machine and sequence rules
// (osfmk/kdp/kdp.c, kdp_udp.c), retransmits exception notifications until
// they are acknowledged, manages breakpoints in target memory, and avoids
// LLDB's known quirks (docs/lldb-kdp.md).
package kdpbridge
