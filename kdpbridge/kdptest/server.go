package kdptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// Handler answers one request of a connected session with a reply whose body
// it fills; the fake peer sets the reply's header. A nil reply (or an error,
// which is logged) means no reply, as XNU drops requests it does not serve.
// CONNECT, REATTACH and the sequence rules are handled by the Server and never
// reach the Handler.
type Handler func(req kdp.Packet) (kdp.Packet, error)

// Server is a fake KDP peer on 127.0.0.1 that applies XNU's session and
// sequence rules (kdp-protocol.md §2.1, §5): it waits for REATTACH or CONNECT
// with seq 0; once connected it runs a request only if its seq is the
// expected one, resends its saved reply to a retransmission of the previous
// request, and drops anything else; replies echo request code, seq and key
// and go to the reply port announced in CONNECT. After RESUMECPUS it ignores
// every request until Notify reports a trap. DISCONNECT and REATTACH end the
// session.
type Server struct {
	tb   testing.TB
	conn *net.UDPConn
	h    Handler

	mu         sync.Mutex
	key        uint32 // key of REATTACH replies (LLDB adopts it)
	state      string // "wait", "halted", "running", "notifying"
	clientIP   net.IP
	replyPort  uint16
	excPort    uint16
	connSeq    uint8
	connKey    uint32
	expected   int // expected request seq
	saved      []byte
	savedTo    *net.UDPAddr
	excSeq     uint8
	acked      chan uint8
	notifyCode kdp.Request // what Notify sends: EXCEPTION or TERMINATION
	received   [][]byte
	sessions   int
	dropReq    int // requests to ignore, for tests of lost requests
	dropRep    int // replies to lose after running their request

	done chan struct{}
	wg   sync.WaitGroup
}

// NewServer starts a fake peer on an ephemeral loopback port. It is closed
// when the test ends.
func NewServer(tb testing.TB, h Handler) *Server {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("kdptest: listen: %v", err)
	}
	s := &Server{tb: tb, conn: conn, h: h, state: "wait", acked: make(chan uint8, 16), done: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the peer's address.
func (s *Server) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// SetKey sets the key the peer returns in REATTACH replies.
func (s *Server) SetKey(k uint32) {
	s.mu.Lock()
	s.key = k
	s.mu.Unlock()
}

// State returns "wait", "halted", "running" or "notifying".
func (s *Server) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Sessions returns how many CONNECTs opened a session.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Received returns copies of every datagram received so far, in order,
// including retransmissions and acks.
func (s *Server) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.received))
	for i, b := range s.received {
		out[i] = bytes.Clone(b)
	}
	return out
}

// DropNextRequests makes the peer ignore the next n requests it receives, as
// if the network lost them.
func (s *Server) DropNextRequests(n int) {
	s.mu.Lock()
	s.dropReq = n
	s.mu.Unlock()
}

// DropNextReplies makes the peer lose its next n replies, including resent
// ones, after running their requests, as if the network lost them.
func (s *Server) DropNextReplies(n int) {
	s.mu.Lock()
	s.dropRep = n
	s.mu.Unlock()
}

// Close stops the peer.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.conn.Close()
	s.wg.Wait()
}

// Notify reports a trap of the running target: it sends p, an
// *kdp.ExceptionNotification or *kdp.TerminationNotification (its Seq set to
// the session's exception sequence), to the client's exception port every
// interval until the client acks it, at most tries times, as XNU does. On
// success the peer is halted again; without an ack the session is dropped.
func (s *Server) Notify(ctx context.Context, p kdp.Packet, interval time.Duration, tries int) error {
	code, _ := p.Kind()
	if code != kdp.Exception && code != kdp.Termination {
		return fmt.Errorf("kdptest: notify with a %T", p)
	}
	s.mu.Lock()
	if s.state != "running" {
		st := s.state
		s.mu.Unlock()
		return fmt.Errorf("kdptest: notify: peer is %s, not running", st)
	}
	s.state = "notifying"
	s.notifyCode = code
	p.Hdr().Seq = s.excSeq
	seq := s.excSeq
	to := &net.UDPAddr{IP: s.clientIP, Port: int(s.excPort)}
	s.mu.Unlock()
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	for range tries {
		if _, err := s.conn.WriteToUDP(b, to); err != nil {
			return err
		}
		t := time.NewTimer(interval)
	wait:
		for {
			select {
			case got := <-s.acked:
				if got != seq {
					continue
				}
				t.Stop()
				s.mu.Lock()
				s.excSeq++
				s.state = "halted"
				s.mu.Unlock()
				return nil
			case <-t.C:
				break wait
			case <-ctx.Done():
				t.Stop()
				s.resetSession("wait")
				return ctx.Err()
			case <-s.done:
				t.Stop()
				return errors.New("kdptest: closed")
			}
		}
	}
	s.resetSession("running")
	return fmt.Errorf("kdptest: exception seq %d not acknowledged after %d sends", seq, tries)
}

func (s *Server) resetSession(state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = state
	s.replyPort, s.excPort, s.excSeq, s.connSeq, s.connKey = 0, 0, 0, 0, 0
	s.saved = nil
}

func (s *Server) loop() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			continue
		}
		d := bytes.Clone(buf[:n])
		s.mu.Lock()
		s.received = append(s.received, d)
		s.mu.Unlock()
		s.handle(d, from)
	}
}

func (s *Server) send(p kdp.Packet, to *net.UDPAddr) []byte {
	b, err := p.MarshalBinary()
	if err != nil {
		s.tb.Errorf("kdptest: encode reply %T: %v", p, err)
		return nil
	}
	s.write(b, to)
	return b
}

// write sends b unless a DropNextReplies is pending; s.mu is held.
func (s *Server) write(b []byte, to *net.UDPAddr) {
	if s.dropRep > 0 {
		s.dropRep--
		return
	}
	s.conn.WriteToUDP(b, to)
}

func (s *Server) handle(d []byte, from *net.UDPAddr) {
	h, err := kdp.PeekHeader(d)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.Reply {
		if s.state == "notifying" && h.Request == s.notifyCode {
			select {
			case s.acked <- h.Seq:
			default:
			}
		}
		return
	}
	if int(h.Len) != len(d) {
		return // XNU drops a request whose length is not the datagram's
	}
	if s.dropReq > 0 {
		s.dropReq--
		return
	}
	req, err := kdp.Decode(d)
	if err != nil {
		return
	}
	switch s.state {
	case "running", "notifying":
		return
	case "wait":
		if h.Seq != 0 {
			return
		}
		switch p := req.(type) {
		case *kdp.ReattachRequest:
			s.send(&kdp.ReattachReply{Header: kdp.Header{Seq: h.Seq, Key: s.key}}, &net.UDPAddr{IP: from.IP, Port: int(p.ReplyPort)})
			s.expected = 0
		case *kdp.ConnectRequest:
			s.clientIP, s.replyPort, s.excPort = from.IP, p.ReplyPort, p.ExcPort
			s.connSeq, s.connKey = h.Seq, h.Key
			s.state = "halted"
			s.sessions++
			s.savedTo = &net.UDPAddr{IP: from.IP, Port: int(p.ReplyPort)}
			s.saved = s.send(&kdp.ConnectReply{Header: h.ReplyHeader()}, s.savedTo)
			s.expected = int(h.Seq) + 1
		}
		return
	}
	// halted
	if p, ok := req.(*kdp.ReattachRequest); ok {
		s.send(&kdp.ReattachReply{Header: kdp.Header{Seq: h.Seq, Key: s.key}}, &net.UDPAddr{IP: from.IP, Port: int(p.ReplyPort)})
		s.state = "wait"
		s.expected = 0
		s.replyPort, s.excPort, s.excSeq, s.saved = 0, 0, 0, nil
		return
	}
	if int(h.Seq) == s.expected-1 && s.saved != nil {
		s.write(s.saved, s.savedTo) // retransmission: resend, do not run again
		return
	}
	to := &net.UDPAddr{IP: from.IP, Port: int(s.replyPort)}
	if p, ok := req.(*kdp.ConnectRequest); ok {
		r := &kdp.ConnectReply{Header: h.ReplyHeader()}
		if h.Seq != s.connSeq || h.Key != s.connKey || p.ReplyPort != s.replyPort || p.ExcPort != s.excPort {
			r.Error = kdp.ErrAlreadyConnected
		}
		s.send(r, &net.UDPAddr{IP: from.IP, Port: int(p.ReplyPort)}) // sideband: not saved
		return
	}
	if int(h.Seq) != s.expected {
		return // "kdp: bad sequence"
	}
	if _, ok := req.(*kdp.HostRebootRequest); ok {
		return
	}
	reply, err := s.h(req)
	if err != nil {
		s.tb.Logf("kdptest: handler: %v", err)
		return
	}
	if reply == nil {
		return
	}
	*reply.Hdr() = h.ReplyHeader()
	s.saved, s.savedTo = s.send(reply, to), to
	s.expected = (s.expected + 1) % 256
	switch req.(type) {
	case *kdp.ResumeCPUsRequest:
		s.state = "running"
	case *kdp.DisconnectRequest:
		s.state = "wait"
		s.replyPort, s.excPort, s.excSeq, s.saved = 0, 0, 0, nil
	}
}
