package kdp

import (
	"encoding"
	"fmt"
	"math"
)

// Packet is one KDP datagram: a request, a reply, a notification or an ack.
// Every packet type of this package implements it; the set is closed.
type Packet interface {
	// Hdr returns the packet's embedded header.
	Hdr() *Header
	// Kind returns the request code and reply bit the packet type encodes.
	Kind() (Request, bool)

	encoding.BinaryMarshaler
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler

	appendBody(b []byte) ([]byte, error)
	decodeBody(b []byte) error
}

// keepLen is implemented by the ack types, whose Len is kept as given.
type keepLen interface{ keepsLen() }

// appendPacket encodes p after b, filling the header's Request, Reply and
// Len (the latter only if p does not keep its own).
func appendPacket(b []byte, p Packet) ([]byte, error) {
	h := p.Hdr()
	h.Request, h.Reply = p.Kind()
	start := len(b)
	b = h.append(b)
	b, err := p.appendBody(b)
	if err != nil {
		return b[:start], fmt.Errorf("kdp: encode %v: %w", h.Request, err)
	}
	n := len(b) - start
	if n > math.MaxUint16 {
		return b[:start], fmt.Errorf("kdp: encode %v: %d bytes: %w", h.Request, n, ErrBadLength)
	}
	if _, ok := p.(keepLen); !ok || h.Len == 0 {
		h.Len = uint16(n)
	}
	wire.PutUint16(b[start+2:], h.Len)
	return b, nil
}

func marshalPacket(p Packet) ([]byte, error) {
	return appendPacket(make([]byte, 0, 64), p)
}

// unmarshalPacket decodes b into p: the header, the framing rules, the body.
func unmarshalPacket(p Packet, b []byte) error {
	h := p.Hdr()
	if err := h.UnmarshalBinary(b); err != nil {
		return err
	}
	req, reply := p.Kind()
	if h.Request != req || h.Reply != reply {
		return fmt.Errorf("%w: got %s, want %s", ErrWrongPacket, kindString(h.Request, h.Reply), kindString(req, reply))
	}
	if _, ok := p.(keepLen); !ok && int(h.Len) != len(b) {
		return fmt.Errorf("%w: %v header says %d bytes, datagram has %d", ErrBadLength, kindString(req, reply), h.Len, len(b))
	}
	if err := p.decodeBody(b); err != nil {
		return fmt.Errorf("%w: %s of %d bytes", err, kindString(req, reply), len(b))
	}
	return nil
}

func kindString(r Request, reply bool) string {
	if reply {
		return r.String() + " reply"
	}
	return r.String() + " request"
}

// reader decodes little-endian fields from a datagram with a sticky error:
// after the first out-of-bounds access every read returns zero and err stays
// set, so a body decoder can read all its fields and check once.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = ErrShortPacket
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u16() uint16 {
	if s := r.take(2); s != nil {
		return wire.Uint16(s)
	}
	return 0
}

func (r *reader) port() uint16 {
	if s := r.take(2); s != nil {
		return portOrder.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4); s != nil {
		return wire.Uint32(s)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return wire.Uint64(s)
	}
	return 0
}

func (r *reader) remaining() int {
	if r.err != nil {
		return 0
	}
	return len(r.b) - r.off
}

// rest copies the remaining bytes into dst's storage and returns it.
func (r *reader) rest(dst []byte) []byte {
	s := r.take(r.remaining())
	if s == nil && r.err != nil {
		return dst[:0]
	}
	return append(dst[:0], s...)
}

// bytesN copies the next n bytes into dst's storage and returns it.
func (r *reader) bytesN(dst []byte, n int) []byte {
	s := r.take(n)
	if r.err != nil {
		return dst[:0]
	}
	return append(dst[:0], s...)
}

// cstring returns the NUL-terminated string in the remaining bytes (all of
// them if there is no NUL) and consumes them.
func (r *reader) cstring() string {
	return cstr(r.take(r.remaining()))
}

// fixedString returns the NUL-terminated string in an n-byte field.
func (r *reader) fixedString(n int) string {
	return cstr(r.take(n))
}

func cstr(s []byte) string {
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}

// appendCString appends s and a terminating NUL.
func appendCString(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, 0)
}

// appendFixedString appends s NUL-padded to n bytes; s may fill all n.
func appendFixedString(b []byte, s string, n int) ([]byte, error) {
	if len(s) > n {
		return b, fmt.Errorf("%q is %d bytes, field holds %d: %w", s, len(s), n, ErrTooLong)
	}
	b = append(b, s...)
	for range n - len(s) {
		b = append(b, 0)
	}
	return b, nil
}

func u32len(n int) (uint32, error) {
	if n > math.MaxUint16 {
		return 0, fmt.Errorf("%d data bytes: %w", n, ErrBadLength)
	}
	return uint32(n), nil
}
