package kdp

import (
	"encoding/binary"
	"fmt"
)

// wire is the byte order of every multi-byte KDP field except the port fields
// of CONNECT and REATTACH: the target's native order, little-endian on every
// CPU XNU's stub runs on today.
var wire = binary.LittleEndian

// portOrder is the byte order of the UDP port fields of CONNECT and REATTACH:
// network order, since the stub copies them unswapped into UDP headers.
var portOrder = binary.BigEndian

// replyBit is the is_reply bit of header byte 0.
const replyBit = 0x80

// Header is the common 8-byte header of every KDP packet (kdp_hdr_t).
type Header struct {
	Request Request // request code, 0..127
	Reply   bool    // is_reply: set on replies and acks
	Seq     uint8   // sequence number; a reply echoes its request's
	Len     uint16  // total length including the header
	Key     uint32  // session key; a reply echoes its request's
}

// Hdr returns h. Every packet type embeds a Header, so Hdr gives access to it
// through the Packet interface.
func (h *Header) Hdr() *Header { return h }

// ReplyHeader returns the header of the reply to a request with header h: the
// same request code, sequence number and key, with the reply bit set. Len is
// filled when the reply is encoded.
func (h *Header) ReplyHeader() Header {
	return Header{Request: h.Request, Reply: true, Seq: h.Seq, Key: h.Key}
}

// String formats the header for logs, e.g. "READMEM64 reply seq=4 len=28 key=0x0".
func (h *Header) String() string {
	kind := "request"
	if h.Reply {
		kind = "reply"
	}
	return fmt.Sprintf("%v %s seq=%d len=%d key=%#x", h.Request, kind, h.Seq, h.Len, h.Key)
}

// AppendBinary appends the 8 header bytes, exactly as the fields say.
func (h *Header) AppendBinary(b []byte) ([]byte, error) {
	return h.append(b), nil
}

// MarshalBinary returns the 8 header bytes, exactly as the fields say.
func (h *Header) MarshalBinary() ([]byte, error) {
	return h.append(make([]byte, 0, HeaderLen)), nil
}

// UnmarshalBinary decodes the first 8 bytes of b. It checks only that they
// are present; a packet type's UnmarshalBinary also checks Len.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("%w: %d bytes, a header needs %d", ErrShortPacket, len(b), HeaderLen)
	}
	h.Request = Request(b[0] &^ replyBit)
	h.Reply = b[0]&replyBit != 0
	h.Seq = b[1]
	h.Len = wire.Uint16(b[2:])
	h.Key = wire.Uint32(b[4:])
	return nil
}

func (h *Header) append(b []byte) []byte {
	b0 := byte(h.Request) &^ replyBit
	if h.Reply {
		b0 |= replyBit
	}
	b = append(b, b0, h.Seq)
	b = wire.AppendUint16(b, h.Len)
	return wire.AppendUint32(b, h.Key)
}

// PeekHeader decodes the header of datagram b without decoding the body.
func PeekHeader(b []byte) (Header, error) {
	var h Header
	err := h.UnmarshalBinary(b)
	return h, err
}
