package kdpbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
	"github.com/machtrace/machtrace/tracer"
)

// startServer serves b on a loopback port until the test ends.
func startServer(t testing.TB, b tracer.Backend, opts ServerOptions) (*net.UDPAddr, tracer.Target) {
	t.Helper()
	tgt := tracer.NewTarget(b)
	return startServerTarget(t, tgt, opts), tgt
}

func startServerTarget(t testing.TB, tgt tracer.Target, opts ServerOptions) *net.UDPAddr {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logf == nil && testing.Verbose() {
		opts.Logf = t.Logf
	}
	srv, err := NewServer(conn, tgt, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
		conn.Close()
	})
	return conn.LocalAddr().(*net.UDPAddr)
}

// rawPeer is a bare UDP socket speaking KDP with the codec, for tests that
// check the server's replies byte by byte.
type rawPeer struct {
	t    *testing.T
	c    *net.UDPConn
	srv  *net.UDPAddr
	seq  uint8
	port uint16
}

func newRawPeer(t *testing.T, srv *net.UDPAddr) *rawPeer {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, srv: srv, port: uint16(c.LocalAddr().(*net.UDPAddr).Port)}
}

func (p *rawPeer) sendBytes(b []byte) {
	p.t.Helper()
	if _, err := p.c.WriteToUDP(b, p.srv); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after the timeout.
func (p *rawPeer) recv(timeout time.Duration) []byte {
	buf := make([]byte, 2048)
	_ = p.c.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := p.c.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// request sends q with the next sequence number and returns the decoded
// reply (failing the test on a timeout).
func (p *rawPeer) request(q kdp.Packet) kdp.Packet {
	p.t.Helper()
	q.Hdr().Seq = p.seq
	p.seq++
	b, err := q.MarshalBinary()
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendBytes(b)
	rb := p.recv(3 * time.Second)
	if rb == nil {
		p.t.Fatalf("%v seq %d: no reply", q.Hdr().Request, q.Hdr().Seq)
	}
	checkEcho(p.t, b, rb)
	r, err := kdp.Decode(rb)
	if err != nil {
		p.t.Fatalf("%v reply %x: %v", q.Hdr().Request, rb, err)
	}
	return r
}

// connect performs LLDB's handshake.
func (p *rawPeer) connect() {
	p.t.Helper()
	p.request(&kdp.ReattachRequest{ReplyPort: p.port})
	p.seq = 0
	if r := p.request(&kdp.ConnectRequest{ReplyPort: p.port, ExcPort: p.port, Greeting: kdp.Greeting}).(*kdp.ConnectReply); r.Error != 0 {
		p.t.Fatalf("CONNECT: %v", r.Error)
	}
}

// checkEcho checks the header rules every reply obeys: request code with the
// reply bit, the request's seq and key, and a length equal to the datagram.
func checkEcho(t *testing.T, req, rep []byte) {
	t.Helper()
	qh, _ := kdp.PeekHeader(req)
	rh, err := kdp.PeekHeader(rep)
	if err != nil {
		t.Fatalf("reply to %v: %v", qh.Request, err)
	}
	if !rh.Reply || rh.Request != qh.Request || rh.Seq != qh.Seq || rh.Key != qh.Key || int(rh.Len) != len(rep) {
		t.Fatalf("reply %s to %s: want %v reply, seq %d, key %#x, len %d", rh.String(), qh.String(), qh.Request, qh.Seq, qh.Key, len(rep))
	}
}

// rewritePorts replaces the client port in LLDB's REATTACH and CONNECT with
// ours (the captures carry the port of the capture run).
func rewritePorts(b []byte, port uint16) []byte {
	b = append([]byte(nil), b...)
	h, err := kdp.PeekHeader(b)
	if err != nil || h.Reply {
		return b
	}
	switch h.Request {
	case kdp.Reattach:
		binary.BigEndian.PutUint16(b[8:], port)
	case kdp.Connect:
		binary.BigEndian.PutUint16(b[8:], port)
		binary.BigEndian.PutUint16(b[10:], port)
	}
	return b
}

// TestReplayLLDB feeds every datagram LLDB sent in the captured sessions to
// the server (fronting a fake process laid out like the capture stub's
// machine) and checks each reply carries what LLDB reads: the echoed request
// and seq, the exact length, and the fields LLDB uses.
func TestReplayLLDB(t *testing.T) {
	for _, tr := range kdptest.Transcripts(t) {
		t.Run(tr.Name, func(t *testing.T) {
			f := newLLDBFake()
			ref := newLLDBFake() // the memory LLDB should see
			srv, _ := startServer(t, fakeWaiter{f}, ServerOptions{ExceptionRetransmit: 50 * time.Millisecond})
			p := newRawPeer(t, srv)
			var nreq, nexc int
			for _, d := range tr.FromLLDB() {
				b := rewritePorts(d.Bytes, p.port)
				h, err := kdp.PeekHeader(b)
				if err != nil {
					t.Fatalf("line %d: %v", d.Line, err)
				}
				if h.Reply && h.Request == kdp.Exception {
					// LLDB's ACK: the notification must have come first.
					nb := p.recv(3 * time.Second)
					n := new(kdp.ExceptionNotification)
					if err := n.UnmarshalBinary(nb); err != nil {
						t.Fatalf("line %d: want an EXCEPTION before LLDB's ack, got %x: %v", d.Line, nb, err)
					}
					if len(nb) != 28 || n.Seq != h.Seq || len(n.Info) != 1 || n.Info[0].Exception != kdp.ExcBreakpoint || n.Info[0].Code != 3 {
						t.Fatalf("line %d: EXCEPTION %x", d.Line, nb)
					}
					p.sendBytes(b)
					nexc++
					continue
				}
				p.sendBytes(b)
				rb := p.recv(3 * time.Second)
				if rb == nil {
					t.Fatalf("line %d: %v seq %d: no reply", d.Line, h.Request, h.Seq)
				}
				checkEcho(t, b, rb)
				checkLLDBReply(t, d.Line, b, rb, f, ref)
				nreq++
			}
			t.Logf("%d requests answered, %d exceptions acknowledged", nreq, nexc)
			if bps := f.breakpointsLeft(); bps != 0 {
				t.Errorf("%d trap bytes left in memory", bps)
			}
		})
	}
}

// breakpointsLeft counts server-planted int3 bytes in the fake's code (the
// program's own trap at 0x3a40 excluded).
func (f *fakeCPU) breakpointsLeft() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for i, c := range f.regions[0].data {
		if c == 0xcc && i != 0x3a40 {
			n++
		}
	}
	return n
}

func checkLLDBReply(t *testing.T, line int, req, rep []byte, f, ref *fakeCPU) {
	t.Helper()
	q, err := kdp.Decode(req)
	if err != nil {
		t.Fatalf("line %d: LLDB's request does not decode: %v", line, err)
	}
	r, err := kdp.Decode(rep)
	if err != nil {
		t.Fatalf("line %d: reply %x does not decode: %v", line, rep, err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("line %d: %v: "+format, append([]any{line, q.Hdr().Request}, args...)...)
	}
	readRef := func(addr uint64, n int) []byte {
		buf := make([]byte, n)
		got, _ := ref.ReadMemory(addr, buf)
		return buf[:got]
	}
	switch q := q.(type) {
	case *kdp.ConnectRequest:
		if r.(*kdp.ConnectReply).Error != 0 {
			fail("error %v", r.(*kdp.ConnectReply).Error)
		}
	case *kdp.VersionRequest:
		v := r.(*kdp.VersionReply)
		if v.Version < 11 || v.Feature&kdp.FeatureBreakpoints == 0 {
			fail("version %d feature %d: LLDB needs >= 11 for 64-bit requests and feature 1 for stub breakpoints", v.Version, v.Feature)
		}
	case *kdp.HostInfoRequest:
		h := r.(*kdp.HostInfoReply)
		if h.CPUType != kdp.CPUTypeX86_64 || h.CPUMask == 0 {
			fail("%+v", h)
		}
	case *kdp.KernelVersionRequest:
		v := r.(*kdp.KernelVersionReply).Version
		if v == "" || !strings.HasPrefix(v, "EFI") || strings.Contains(v, "Darwin Kernel") || rep[len(rep)-1] != 0 {
			fail("%q: want a NUL-terminated EFI string so LLDB does not search for XNU", v)
		}
	case *kdp.ReadRegsRequest:
		rr := r.(*kdp.ReadRegsReply)
		switch q.Flavor {
		case kdp.X86ThreadState64:
			if rr.Error != 0 || len(rr.State) != kdp.X86ThreadState64Size {
				fail("error %v, %d bytes", rr.Error, len(rr.State))
			}
			want, _ := f.GetState(1, tracer.FlavorGeneral)
			if rip := binary.LittleEndian.Uint64(rr.State[128:]); rip != want.PC() {
				fail("rip %#x, process has %#x", rip, want.PC())
			}
			if rsp := binary.LittleEndian.Uint64(rr.State[56:]); rsp != want.SP() {
				fail("rsp %#x, process has %#x", rsp, want.SP())
			}
		case kdp.X86FloatState64:
			if rr.Error != 0 || len(rr.State) != kdp.X86FloatState64Size {
				fail("error %v, %d bytes", rr.Error, len(rr.State))
			}
		default:
			if rr.Error != kdp.ErrBadFlavor || len(rep) != 12 {
				fail("flavor %d: error %v, %d bytes (want BADFLAVOR, 12)", q.Flavor, rr.Error, len(rep))
			}
		}
	case *kdp.WriteRegsRequest:
		if e := r.(*kdp.WriteRegsReply).Error; e != 0 {
			fail("error %v", e)
		}
		got, _ := f.GetState(1, tracer.FlavorGeneral)
		if rax, _ := got.Get("rax"); rax != binary.LittleEndian.Uint64(q.State) {
			fail("rax %#x after writing %#x", rax, binary.LittleEndian.Uint64(q.State))
		}
	case *kdp.ReadMem64Request:
		checkRead(t, line, q.NBytes, r.(*kdp.ReadMem64Reply).Error, r.(*kdp.ReadMem64Reply).Data, readRef(q.Address, int(q.NBytes)))
	case *kdp.ReadMemRequest:
		checkRead(t, line, q.NBytes, r.(*kdp.ReadMemReply).Error, r.(*kdp.ReadMemReply).Data, readRef(uint64(q.Address), int(q.NBytes)))
	case *kdp.WriteMem64Request:
		if e := r.(*kdp.WriteMem64Reply).Error; e != 0 {
			fail("error %v", e)
		}
		_, _ = ref.WriteMemory(q.Address, q.Data)
	case *kdp.MaxBytesRequest:
		if m := r.(*kdp.MaxBytesReply).MaxBytes; m != kdp.MaxData {
			fail("%d", m)
		}
	case *kdp.Breakpoint64SetRequest:
		if e := r.(*kdp.Breakpoint64SetReply).Error; e != 0 {
			fail("error %v", e)
		}
		if c, _ := f.byteAtLocked(q.Address); c != 0xcc {
			fail("no int3 at %#x", q.Address)
		}
	case *kdp.Breakpoint64RemoveRequest:
		if e := r.(*kdp.Breakpoint64RemoveReply).Error; e != 0 {
			fail("error %v", e)
		}
	case *kdp.ResumeCPUsRequest, *kdp.DisconnectRequest, *kdp.ReattachRequest:
		if len(rep) != 8 {
			fail("%d bytes", len(rep))
		}
	}
}

func (f *fakeCPU) byteAtLocked(a uint64) (byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byteAt(a)
}

// checkRead checks a memory read reply against the process's memory: LLDB
// takes any data as success and no data as failure.
func checkRead(t *testing.T, line int, n uint32, code kdp.ErrorCode, data, want []byte) {
	t.Helper()
	if !bytes.Equal(data, want) {
		t.Fatalf("line %d: read %d bytes: got %d bytes %x..., process has %d bytes", line, n, len(data), head(data), len(want))
	}
	if (code == 0) != (len(data) == int(n)) {
		t.Fatalf("line %d: read %d bytes: %d bytes with error %v", line, n, len(data), code)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }
