package kdp

// NewPacket returns a new zero packet of the type that encodes request code r
// with reply bit reply, or an UnknownRequestError.
func NewPacket(r Request, reply bool) (Packet, error) {
	if r >= NumRequests {
		return nil, UnknownRequestError(r)
	}
	i := 0
	if reply {
		i = 1
	}
	return registry[r][i](), nil
}

// Decode decodes datagram b into a new packet of the type its header names.
// The packet is nil exactly when the error is not.
func Decode(b []byte) (Packet, error) {
	h, err := PeekHeader(b)
	if err != nil {
		return nil, err
	}
	p, err := NewPacket(h.Request, h.Reply)
	if err != nil {
		return nil, err
	}
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return p, nil
}

// Parser decodes datagrams into packet values it owns, one per packet type,
// so that a long-lived reader does not allocate per datagram. A packet
// returned by Decode stays valid until the next Decode of the same type; a
// Parser is not safe for concurrent use. The zero Parser is ready to use.
type Parser struct {
	cache [NumRequests][2]Packet
}

// Decode decodes datagram b into the Parser's packet of the type its header
// names. The packet is nil exactly when the error is not.
func (ps *Parser) Decode(b []byte) (Packet, error) {
	h, err := PeekHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Request >= NumRequests {
		return nil, UnknownRequestError(h.Request)
	}
	i := 0
	if h.Reply {
		i = 1
	}
	p := ps.cache[h.Request][i]
	if p == nil {
		p = registry[h.Request][i]()
		ps.cache[h.Request][i] = p
	}
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return p, nil
}

// StatusReply is implemented by every reply that carries an error field.
type StatusReply interface {
	Packet
	Status() ErrorCode
}
