// Package kdp is a wire codec for Apple's Kernel Debugging Protocol (KDP),
// protocol version 12, as spoken between XNU's in-kernel debug stub and a
// remote debugger such as LLDB's kdp-remote plugin.
//
// The package turns bytes into packets and packets into bytes; it has no
// network and no OS code. Every request of the protocol (the 32 request
// numbers of kdp_req_t) has a request type and a reply type, each a struct
// that embeds the 8-byte Header and implements MarshalBinary, AppendBinary and
// UnmarshalBinary:
//
//	b, err := (&kdp.ReadMem64Request{Header: kdp.Header{Seq: 4}, Address: a, NBytes: 16}).MarshalBinary()
//	p, err := kdp.Decode(datagram) // *kdp.ReadMem64Reply, *kdp.Exception, ...
//
// The exception notification (Exception, request 13, sent by the stub) and
// its acknowledgement (ExceptionAck, the reply) follow the same rules; so do
// the never-used termination notification and its ack.
//
// # Wire rules
//
// The header is: byte 0 = request (bits 0-6) | is_reply (bit 7), byte 1 =
// sequence number, bytes 2-3 = total length of the datagram including the
// header, bytes 4-7 = session key. Every multi-byte field is little-endian
// (the target's native order for x86_64 and arm64), except the UDP port fields
// of CONNECT and REATTACH, which are big-endian (network order) because the
// stub copies them unswapped into UDP headers.
//
// Encoding fills the header's Request, Reply and Len fields from the packet's
// type and size; the caller sets Seq and Key. The one exception is the
// acknowledgement of a notification: LLDB copies the notification's length
// into its 8-byte ack, so ExceptionAck and TerminationAck keep a non-zero Len
// as given (and decoding them does not check it, as XNU does not).
//
// Decoding checks every length before slicing, requires the header length to
// equal the datagram length (ErrBadLength), rejects datagrams shorter than
// their fixed layout (ErrShortPacket), and never panics. Trailing bytes after a
// fixed layout are ignored, as XNU ignores them (arm64 XNU pads its exception
// notification with 16 stray bytes). Decoded values own their bytes: slices
// are copied, reusing the capacity the value already has, so decoding into a
// reused value (UnmarshalBinary, or a Parser) does not allocate per packet.
//
// # Errors
//
// A malformed datagram yields an error matching ErrShortPacket, ErrBadLength
// or ErrWrongPacket; an unknown request code yields UnknownRequestError. The
// error field a stub puts in a reply is an ErrorCode, itself an error, which
// clients wrap as *ProtocolError so that errors.Is(err, kdp.ErrBadAccess)
// works.
//
// # Registers
//
// READREGS and WRITEREGS carry a thread-state image as raw bytes; its layout
// is fixed by the (CPU type, flavor) pair. The flavor numbers and sizes that
// XNU and LLDB use are constants here (X86ThreadState64, ARMThreadState64, ...)
// and FlavorSize reports the size for a CPU type. Converting an image to named
// registers is left to the caller.
package kdp
