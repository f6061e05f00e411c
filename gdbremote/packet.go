package gdbremote

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// conn is the framing layer: "$data#cs" packets, acks, escapes and run-length
// encoding, deadlines on every read, and the queue of stop replies that
// arrived when nobody asked.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader
	addr    string
	timeout time.Duration
	noAck   bool
	trace   io.Writer

	// pending holds non-stop packets that arrived while waiting for an
	// ack (read before the next reply).
	pending [][]byte
	// async holds stop replies that arrived unasked.
	async []StopReply
	err   error // sticky: after a timeout or I/O error the conn is dead
	wbuf  []byte
}

func newConn(nc net.Conn, addr string, timeout time.Duration, trace io.Writer) *conn {
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), addr: addr, timeout: timeout, trace: trace}
}

func (c *conn) close() error {
	if c.err == nil {
		c.err = ErrClosed
	}
	return c.nc.Close()
}

func (c *conn) logf(format string, args ...any) {
	if c.trace != nil {
		fmt.Fprintf(c.trace, format+"\n", args...)
	}
}

// fail records a fatal error and closes the connection.
func (c *conn) fail(op string, err error) error {
	if c.err != nil && !errors.Is(c.err, ErrClosed) {
		return c.err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		err = &TimeoutError{Addr: c.addr, Op: op, After: c.timeout}
	} else if errors.Is(err, io.EOF) {
		err = fmt.Errorf("gdb://%s: %s: stub closed the connection: %w", c.addr, op, io.ErrUnexpectedEOF)
	} else {
		err = fmt.Errorf("gdb://%s: %s: %w", c.addr, op, err)
	}
	c.err = err
	c.nc.Close()
	return err
}

func checksum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return s
}

// frame builds "$data#cs", escaping the bytes the protocol reserves.
func (c *conn) frame(data []byte) []byte {
	b := append(c.wbuf[:0], '$')
	start := len(b)
	for _, x := range data {
		switch x {
		case '$', '#', '}', '*':
			b = append(b, '}', x^0x20)
		default:
			b = append(b, x)
		}
	}
	sum := checksum(b[start:])
	b = append(b, '#', hexDigits[sum>>4], hexDigits[sum&15])
	c.wbuf = b
	return b
}

const hexDigits = "0123456789abcdef"

func (c *conn) write(op string, b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write(b); err != nil {
		return c.fail(op, err)
	}
	return nil
}

func (c *conn) deadline() { c.nc.SetReadDeadline(time.Now().Add(c.timeout)) }

// send writes one packet and, with acks on, waits for its '+'. A '-' makes
// it resend. Packets that arrive before the ack (QEMU's unasked stop reply
// at connect can) are acknowledged and queued. A slow ack is waited for, not
// answered with a resend: a stub answers every copy it receives.
func (c *conn) send(op string, data []byte) error {
	if c.err != nil {
		return c.err
	}
	pkt := c.frame(data)
	c.logf("-> %s", pkt)
	if err := c.write(op, pkt); err != nil {
		return err
	}
	if c.noAck {
		return nil
	}
	c.deadline()
	naks := 0
	for {
		b, err := c.br.ReadByte()
		if err != nil {
			return c.fail(op, err)
		}
		switch b {
		case '+':
			return nil
		case '-':
			if naks++; naks > 5 {
				return c.fail(op, errors.New("stub rejected the packet 5 times (line noise?)"))
			}
			if err := c.write(op, c.frame(data)); err != nil {
				return err
			}
		case '$':
			p, err := c.readBody(op)
			if err != nil {
				return err
			}
			if p == nil {
				continue // bad checksum, nak sent
			}
			c.queue(p)
		}
		// anything else is noise (a stray '+' from an earlier exchange, console bytes)
	}
}

func (c *conn) queue(p []byte) {
	if s, ok := parseStop(p); ok {
		c.async = append(c.async, s)
		return
	}
	c.pending = append(c.pending, p)
}

// readBody reads a packet after its '$': data, '#', two checksum digits. It
// acks (or naks) it, and returns the decoded data, or nil after a nak.
func (c *conn) readBody(op string) ([]byte, error) {
	raw, err := c.br.ReadSlice('#')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, c.fail(op, errors.New("packet larger than 64 KiB"))
		}
		return nil, c.fail(op, err)
	}
	body := raw[:len(raw)-1]
	var cs [2]byte
	if _, err := io.ReadFull(c.br, cs[:]); err != nil {
		return nil, c.fail(op, err)
	}
	want, perr := strconv.ParseUint(string(cs[:]), 16, 8)
	if perr != nil || byte(want) != checksum(body) {
		c.logf("<- $%s#%s (bad checksum, nak)", body, cs[:])
		if !c.noAck {
			if err := c.write(op, []byte{'-'}); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	data := decodeBody(body)
	if c.trace != nil {
		c.logf("<- %s", printable(data))
	}
	if !c.noAck {
		if err := c.write(op, []byte{'+'}); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// decodeBody undoes '}' escapes and '*' run-length encoding into a new slice.
func decodeBody(body []byte) []byte {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		x := body[i]
		switch {
		case x == '}' && i+1 < len(body):
			i++
			out = append(out, body[i]^0x20)
		case x == '*' && i+1 < len(body) && len(out) > 0:
			i++
			n := int(body[i]) - 29
			last := out[len(out)-1]
			for ; n > 0; n-- {
				out = append(out, last)
			}
		default:
			out = append(out, x)
		}
	}
	return out
}

func printable(b []byte) string {
	if len(b) > 200 {
		return string(bytes.ToValidUTF8(b[:200], []byte("?"))) + fmt.Sprintf("...(%d bytes)", len(b))
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// recv reads the next packet (from the queue first). With stopOK false, stop
// replies are queued as asynchronous and skipped; with it true, they are
// returned like any packet.
func (c *conn) recv(op string, stopOK bool) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	if stopOK && len(c.async) > 0 {
		s := c.async[0]
		c.async = c.async[1:]
		return []byte(s.Raw), nil
	}
	if len(c.pending) > 0 {
		p := c.pending[0]
		c.pending = c.pending[1:]
		return p, nil
	}
	c.deadline()
	for {
		b, err := c.br.ReadByte()
		if err != nil {
			return nil, c.fail(op, err)
		}
		switch b {
		case '$':
		case '%': // a notification (non-stop mode): read and drop it
			if _, err := c.br.ReadSlice('#'); err != nil {
				return nil, c.fail(op, err)
			}
			var cs [2]byte
			if _, err := io.ReadFull(c.br, cs[:]); err != nil {
				return nil, c.fail(op, err)
			}
			continue
		default:
			continue // acks and noise
		}
		p, err := c.readBody(op)
		if err != nil {
			return nil, err
		}
		if p == nil {
			continue
		}
		if !stopOK {
			if s, ok := parseStop(p); ok {
				c.async = append(c.async, s)
				continue
			}
		}
		return p, nil
	}
}

// request sends a packet and returns its reply. Stop replies that arrive
// meanwhile are recorded as asynchronous. An "Exx" reply becomes a
// *ProtocolError; an empty reply is returned as an empty slice.
func (c *conn) request(op string, data []byte) ([]byte, error) {
	if err := c.send(op, data); err != nil {
		return nil, err
	}
	p, err := c.recv(op, false)
	if err != nil {
		return nil, err
	}
	if err := replyError(op, p); err != nil {
		return nil, err
	}
	return p, nil
}

// replyError turns "Exx" and "E.text" replies into *ProtocolError.
func replyError(op string, p []byte) error {
	if len(p) == 3 && p[0] == 'E' && isHex(p[1]) && isHex(p[2]) {
		v, _ := strconv.ParseUint(string(p[1:]), 16, 8)
		return &ProtocolError{Op: op, Code: uint8(v)}
	}
	if len(p) > 2 && p[0] == 'E' && p[1] == '.' {
		return &ProtocolError{Op: op, Text: string(p[2:])}
	}
	return nil
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// StopReply is a parsed stop reply packet (T, S, W or X).
type StopReply struct {
	Kind   byte   // 'T' or 'S' (stopped), 'W' (exited), 'X' (terminated)
	Signal uint8  // GDB signal number (2 SIGINT after 0x03, 5 SIGTRAP)
	Thread string // the thread: field, if any ("p01.02" or "02")
	Reason string // "swbreak", "hwbreak", "watch", ... if given
	Raw    string
}

// parseStop recognises a stop reply. Such packets are never valid replies to
// the requests that are not resumptions, so one that arrives while another
// reply is awaited is an asynchronous event.
func parseStop(p []byte) (StopReply, bool) {
	if len(p) < 3 || !isHex(p[1]) || !isHex(p[2]) {
		return StopReply{}, false
	}
	switch p[0] {
	case 'T', 'S', 'W', 'X':
	default:
		return StopReply{}, false
	}
	if p[0] != 'T' && len(p) != 3 && !bytes.HasPrefix(p[3:], []byte(";")) {
		return StopReply{}, false
	}
	sig, _ := strconv.ParseUint(string(p[1:3]), 16, 8)
	s := StopReply{Kind: p[0], Signal: uint8(sig), Raw: string(p)}
	if p[0] == 'T' {
		for _, f := range strings.Split(string(p[3:]), ";") {
			k, v, _ := strings.Cut(f, ":")
			switch k {
			case "thread":
				s.Thread = v
			case "swbreak", "hwbreak", "watch", "rwatch", "awatch", "library", "replaylog", "create", "fork", "vfork", "exec":
				s.Reason = k
			}
		}
	}
	return s, true
}

// hexBytes decodes a hex reply.
func hexBytes(op string, p []byte) ([]byte, error) {
	if len(p)%2 != 0 {
		// some stubs send "xx" for unavailable registers: treat as 0
		return nil, fmt.Errorf("%s: odd-length hex reply (%d chars)", op, len(p))
	}
	b := make([]byte, len(p)/2)
	for i := 0; i < len(b); i++ {
		h, l := p[2*i], p[2*i+1]
		if h == 'x' && l == 'x' {
			continue // register value unavailable
		}
		v, err := hex.DecodeString(string(p[2*i : 2*i+2]))
		if err != nil {
			return nil, fmt.Errorf("%s: bad hex in reply at byte %d: %w", op, i, err)
		}
		b[i] = v[0]
	}
	return b, nil
}
