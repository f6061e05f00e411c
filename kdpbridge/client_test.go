package kdpbridge_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
)

// steady are client options for tests where the peer always answers: the
// timeout is long so that a loaded machine never causes a retransmission,
// which would change the datagrams the tests count and compare.
var steady = kdpbridge.ClientOptions{Timeout: 3 * time.Second}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// replayHandler answers each request with the stub reply the transcript
// recorded for it (same request code and seq, in order).
func replayHandler(t *testing.T, tr kdptest.Transcript) kdptest.Handler {
	var replies []kdp.Packet
	for _, d := range tr.Datagrams {
		if d.FromLLDB {
			continue
		}
		p, err := kdp.Decode(d.Bytes)
		if err != nil {
			t.Fatalf("%s:%d: %v", tr.Name, d.Line, err)
		}
		if p.Hdr().Reply {
			replies = append(replies, p)
		}
	}
	return func(req kdp.Packet) (kdp.Packet, error) {
		r, _ := req.Kind()
		for i, p := range replies {
			if pr, _ := p.Kind(); pr == r && p.Hdr().Seq == req.Hdr().Seq {
				replies = append(replies[:i], replies[i+1:]...)
				return p, nil
			}
		}
		t.Errorf("%s: no recorded reply for %v", tr.Name, req.Hdr())
		return nil, nil
	}
}

// TestClientMatchesLLDB runs, for every LLDB transcript, the client
// operations that correspond to LLDB's requests against a fake peer that
// answers with the recorded replies, and checks that the client sends
// LLDB's exact bytes (the announced UDP port aside, which differs per run).
func TestClientMatchesLLDB(t *testing.T) {
	for _, tr := range kdptest.Transcripts(t) {
		t.Run(tr.Name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := kdptest.NewServer(t, replayHandler(t, tr))
			lldb := tr.FromLLDB()
			var first kdp.ReattachRequest
			if err := first.UnmarshalBinary(lldb[0].Bytes); err != nil {
				t.Fatalf("first LLDB datagram is not REATTACH: %v", err)
			}
			// The key LLDB used is the one the stub's REATTACH reply gave.
			var rr kdp.ReattachReply
			for _, d := range tr.Datagrams {
				if !d.FromLLDB && rr.UnmarshalBinary(d.Bytes) == nil {
					break
				}
			}
			srv.SetKey(rr.Key)

			var c *kdpbridge.Client
			for i := 0; i < len(tr.Datagrams); i++ {
				d := tr.Datagrams[i]
				if !d.FromLLDB {
					continue
				}
				p, err := kdp.Decode(d.Bytes)
				if err != nil {
					t.Fatalf("line %d: %v", d.Line, err)
				}
				if c == nil {
					if _, ok := p.(*kdp.ReattachRequest); !ok {
						t.Fatalf("line %d: %T before the handshake", d.Line, p)
					}
					if c, err = kdpbridge.Connect(ctx, srv.Addr().String(), steady); err != nil {
						t.Fatalf("Connect: %v", err)
					}
					continue
				}
				switch p := p.(type) {
				case *kdp.ConnectRequest, *kdp.VersionRequest, *kdp.HostInfoRequest, *kdp.KernelVersionRequest:
					// Sent by Connect, or by hand as below after the handshake.
					if p.Hdr().Seq > 3 {
						_, err = c.RoundTrip(ctx, p)
					}
				case *kdp.ReadMem64Request:
					_, err = c.ReadMem(ctx, p.Address, make([]byte, p.NBytes))
				case *kdp.ReadMemRequest:
					_, err = c.ReadMem(ctx, uint64(p.Address), make([]byte, p.NBytes))
				case *kdp.ReadRegsRequest:
					_, err = c.ReadRegs(ctx, p.CPU, p.Flavor)
				case *kdp.WriteRegsRequest:
					err = c.WriteRegs(ctx, p.CPU, p.Flavor, p.State)
				case *kdp.WriteMem64Request:
					err = c.WriteMem(ctx, p.Address, p.Data)
				case *kdp.Breakpoint64SetRequest:
					err = c.SetBreakpoint(ctx, p.Address)
				case *kdp.Breakpoint64RemoveRequest:
					err = c.RemoveBreakpoint(ctx, p.Address)
				case *kdp.ResumeCPUsRequest:
					if err := c.Resume(ctx); err != nil {
						t.Fatalf("line %d: Resume: %v", d.Line, err)
					}
					// The stub's next datagram is the exception; LLDB acks it.
					for i++; i < len(tr.Datagrams) && (tr.Datagrams[i].FromLLDB || tr.Datagrams[i].Bytes[0] != byte(kdp.Exception)); i++ {
					}
					var exc kdp.ExceptionNotification
					if err := exc.UnmarshalBinary(tr.Datagrams[i].Bytes); err != nil {
						t.Fatalf("line %d: not an exception after RESUMECPUS: %v", tr.Datagrams[i].Line, err)
					}
					if err := srv.Notify(ctx, &exc, 100*time.Millisecond, 20); err != nil {
						t.Fatal(err)
					}
					e, err := c.WaitException(ctx)
					if err != nil || len(e.Info) != 1 || e.Info[0] != exc.Info[0] {
						t.Fatalf("WaitException = %+v, %v; want %+v", e, err, exc.Info)
					}
				case *kdp.ExceptionAck:
					// Sent by the client's reader when the exception came.
				case *kdp.DisconnectRequest:
					err = c.Disconnect(ctx)
				default:
					_, err = c.RoundTrip(ctx, p)
				}
				var pe *kdp.ProtocolError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("line %d %s: %v", d.Line, d.Name, err)
				}
			}
			if c != nil {
				c.Close()
			}
			got := srv.Received()
			if len(got) != len(lldb) {
				t.Errorf("client sent %d datagrams, LLDB %d", len(got), len(lldb))
			}
			port := c.LocalPort()
			for i := range min(len(got), len(lldb)) {
				want := bytes.Clone(lldb[i].Bytes)
				withPort(want, port)
				if !bytes.Equal(got[i], want) {
					t.Errorf("datagram %d (transcript line %d, %s):\n got %x\nwant %x", i, lldb[i].Line, lldb[i].Name, got[i], want)
				}
			}
		})
	}
}

// withPort puts port where REATTACH and CONNECT carry LLDB's port.
func withPort(b []byte, port uint16) {
	hi, lo := byte(port>>8), byte(port)
	switch {
	case b[0] == byte(kdp.Reattach) && len(b) >= 10:
		b[8], b[9] = hi, lo
	case b[0] == byte(kdp.Connect) && len(b) >= 12:
		b[8], b[9], b[10], b[11] = hi, lo, hi, lo
	}
}

const (
	textBase  = 0xffffff8000200000
	stackBase = 0xffffff80aabb0000
)

// newTarget returns a fake x86_64 kernel with 8 KiB of text and 4 KiB of
// stack, and a fake peer serving it.
func newTarget(t testing.TB) (*kdptest.Target, *kdptest.Server) {
	tgt := kdptest.NewTarget()
	text := make([]byte, 8192)
	for i := range text {
		text[i] = byte(i * 7)
	}
	tgt.Map(textBase, text)
	tgt.Map(stackBase, make([]byte, 4096))
	gpr := make([]byte, kdp.X86ThreadState64Size)
	gpr[128] = 0x35 // rip low byte
	tgt.SetRegs(kdp.X86ThreadState64, gpr)
	return tgt, kdptest.NewServer(t, tgt.Handle)
}

func TestClientOperations(t *testing.T) {
	ctx := testCtx(t)
	tgt, srv := newTarget(t)
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info := c.Info()
	if info.Version != 12 || !info.Uses64() || !info.StubBreakpoints() || info.CPUType != kdp.CPUTypeX86_64 || info.KernelVersion != tgt.KernelVersion {
		t.Fatalf("Info = %+v", info)
	}

	t.Run("read chunks", func(t *testing.T) {
		before := len(srv.Received())
		buf := make([]byte, 1300)
		n, err := c.ReadMem(ctx, textBase+100, buf)
		if err != nil || n != len(buf) {
			t.Fatalf("ReadMem = %d, %v", n, err)
		}
		if want := tgt.Mem(textBase+100, len(buf)); !bytes.Equal(buf, want) {
			t.Fatal("ReadMem returned the wrong bytes")
		}
		var sizes []uint32
		for _, d := range srv.Received()[before:] {
			var r kdp.ReadMem64Request
			if err := r.UnmarshalBinary(d); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, r.NBytes)
		}
		if len(sizes) != 3 || sizes[0] != 512 || sizes[1] != 512 || sizes[2] != 276 {
			t.Fatalf("READMEM64 sizes = %v, want [512 512 276]", sizes)
		}
	})
	t.Run("read partial", func(t *testing.T) {
		buf := make([]byte, 600)
		n, err := c.ReadMem(ctx, textBase+8192-100, buf)
		if n != 100 || !errors.Is(err, kdp.ErrBadAccess) {
			t.Fatalf("ReadMem across the end = %d, %v; want 100, ErrBadAccess", n, err)
		}
		var pe *kdp.ProtocolError
		if !errors.As(err, &pe) || pe.Request != kdp.ReadMem64 {
			t.Fatalf("error %v is not a READMEM64 *ProtocolError", err)
		}
	})
	t.Run("write", func(t *testing.T) {
		data := bytes.Repeat([]byte("machtrace"), 300) // 2700 bytes: 3 WRITEMEM64s
		if err := c.WriteMem(ctx, textBase, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tgt.Mem(textBase, len(data)), data) {
			t.Fatal("memory not written")
		}
		err := c.WriteMem(ctx, 0x1000, []byte{1})
		if !errors.Is(err, kdp.ErrBadAccess) {
			t.Fatalf("write to unmapped memory: %v", err)
		}
	})
	t.Run("registers", func(t *testing.T) {
		img, err := c.ReadRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ThreadState64)
		if err != nil || len(img) != kdp.X86ThreadState64Size || img[128] != 0x35 {
			t.Fatalf("ReadRegs = %d bytes, %v", len(img), err)
		}
		img[0] = 5 // rax
		if err := c.WriteRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ThreadState64, img); err != nil {
			t.Fatal(err)
		}
		if tgt.Regs(kdp.X86ThreadState64)[0] != 5 {
			t.Fatal("rax not written")
		}
		_, err = c.ReadRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ExceptionState64)
		if !errors.Is(err, kdp.ErrBadFlavor) {
			t.Fatalf("ReadRegs(flavor 6) = %v, want ErrBadFlavor", err)
		}
	})
	t.Run("breakpoints", func(t *testing.T) {
		const bp = textBase + 0x40
		if err := c.SetBreakpoint(ctx, bp); err != nil {
			t.Fatal(err)
		}
		if err := c.SetBreakpoint(ctx, bp); !errors.Is(err, kdp.ErrBreakpointAlreadySet) {
			t.Fatalf("second SetBreakpoint = %v", err)
		}
		if err := c.RemoveBreakpoint(ctx, bp); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveBreakpoint(ctx, bp); !errors.Is(err, kdp.ErrBreakpointNotFound) {
			t.Fatalf("second RemoveBreakpoint = %v", err)
		}
	})
	t.Run("raw", func(t *testing.T) {
		r, err := c.RoundTrip(ctx, &kdp.MaxBytesRequest{})
		if err != nil || r.(*kdp.MaxBytesReply).MaxBytes != kdp.MaxData {
			t.Fatalf("MAXBYTES = %#v, %v", r, err)
		}
		v, k, err := c.Version(ctx)
		if err != nil || v != 12 || k != 1 {
			t.Fatalf("Version = %d, %d, %v", v, k, err)
		}
		kv, err := c.KernelVersion(ctx)
		if err != nil || kv != tgt.KernelVersion {
			t.Fatalf("KernelVersion = %q, %v", kv, err)
		}
		mask, typ, sub, err := c.HostInfo(ctx)
		if err != nil || mask != 1 || typ != kdp.CPUTypeX86_64 || sub != 3 {
			t.Fatalf("HostInfo = %d %#x %d, %v", mask, typ, sub, err)
		}
	})
	t.Run("resume and trap", func(t *testing.T) {
		if _, err := c.WaitException(ctx); !errors.Is(err, kdpbridge.ErrNotRunning) {
			t.Fatalf("WaitException while halted = %v", err)
		}
		for round := range 3 {
			if err := c.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadRegs(ctx, 1, 4); !errors.Is(err, kdpbridge.ErrRunning) {
				t.Fatalf("ReadRegs while running = %v, want ErrRunning", err)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := c.WaitException(short)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cannot interrupt") {
				t.Fatalf("WaitException before the trap = %v", err)
			}
			exc := &kdp.ExceptionNotification{Info: []kdp.ExcInfo{{Exception: kdp.ExcBreakpoint, Code: 3}}}
			if err := srv.Notify(ctx, exc, 50*time.Millisecond, 20); err != nil {
				t.Fatal(err)
			}
			e, err := c.WaitException(ctx)
			if err != nil || e.Seq != uint8(round) || e.Info[0].Exception != kdp.ExcBreakpoint {
				t.Fatalf("WaitException = %+v, %v", e, err)
			}
			if _, err := c.ReadRegs(ctx, 1, 4); err != nil {
				t.Fatalf("ReadRegs after the trap: %v", err)
			}
		}
	})
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.State() != "wait" {
		t.Fatalf("peer state after Disconnect = %s", srv.State())
	}
	if _, err := c.ReadRegs(ctx, 1, 4); !errors.Is(err, kdpbridge.ErrClosed) {
		t.Fatalf("ReadRegs after Disconnect = %v, want ErrClosed", err)
	}
}

func TestClientNotAnswering(t *testing.T) {
	ctx := testCtx(t)
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_, err = kdpbridge.Connect(ctx, silent.LocalAddr().String(), kdpbridge.ClientOptions{Timeout: 100 * time.Millisecond})
	took := time.Since(start)
	var te *kdpbridge.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, kdpbridge.ErrNotAnswering) || te.Request != kdp.Reattach || te.Tries != 3 {
		t.Fatalf("Connect to a silent peer = %v", err)
	}
	want := "peer not answering at " + silent.LocalAddr().String() + " after 3 tries"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "debug= boot-arg") {
		t.Fatalf("error %q does not say %q and give the boot-arg hint", err, want)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("gave up after %v, want about 3 × 100ms", took)
	}
	// Three identical REATTACHes, as LLDB sends.
	buf := make([]byte, 64)
	var got [][]byte
	silent.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		n, _, err := silent.ReadFromUDP(buf)
		if err != nil {
			break
		}
		got = append(got, bytes.Clone(buf[:n]))
	}
	if len(got) != 3 || !bytes.Equal(got[0], got[1]) || !bytes.Equal(got[1], got[2]) || got[0][0] != byte(kdp.Reattach) {
		t.Fatalf("sent %x, want 3 identical REATTACHes", got)
	}
}

// TestClientSkipsStaleReplies uses a hand-written peer that answers every
// request with a stale reply (an older seq), then the right reply twice.
func TestClientSkipsStaleReplies(t *testing.T) {
	ctx := testCtx(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tgt := kdptest.NewTarget()
	tgt.Map(textBase, []byte("0123456789abcdef"))
	go func() {
		buf := make([]byte, 2048)
		var port uint16
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := kdp.Decode(buf[:n])
			if err != nil {
				continue
			}
			var reply kdp.Packet
			switch p := req.(type) {
			case *kdp.ReattachRequest:
				port, reply = p.ReplyPort, &kdp.ReattachReply{}
			case *kdp.ConnectRequest:
				reply = &kdp.ConnectReply{}
			default:
				reply, _ = tgt.Handle(req)
			}
			to := &net.UDPAddr{IP: from.IP, Port: int(port)}
			h := req.Hdr().ReplyHeader()
			if h.Seq > 0 {
				stale := &kdp.ReadMem64Reply{Header: h, Data: []byte("stale!")}
				stale.Seq--
				b, _ := stale.MarshalBinary()
				conn.WriteToUDP(b, to)
			}
			*reply.Hdr() = h
			b, _ := reply.MarshalBinary()
			conn.WriteToUDP(b, to)
			conn.WriteToUDP(b, to)
		}
	}()
	c, err := kdpbridge.Connect(ctx, conn.LocalAddr().String(), steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		buf := make([]byte, 4)
		if _, err := c.ReadMem(ctx, textBase+uint64(i%12), buf); err != nil {
			t.Fatal(err)
		}
		if want := "0123456789abcdef"[i%12 : i%12+4]; string(buf) != want {
			t.Fatalf("read %d = %q, want %q", i, buf, want)
		}
	}
}

// TestClientResync checks that a request whose replies are all lost, or
// which is itself lost, fails with a timeout and leaves the session usable:
// the next request finds out which seq the stub expects.
func TestClientResync(t *testing.T) {
	ctx := testCtx(t)
	tgt, srv := newTarget(t)
	opts := kdpbridge.ClientOptions{Timeout: 50 * time.Millisecond}
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		name string
		drop func(int)
	}{
		{"replies lost after the write ran", srv.DropNextReplies},
		{"requests lost", srv.DropNextRequests},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i, data := range []string{"AAAA", "BBBB", "CCCC"} {
				tt.drop(3)
				err := c.WriteMem(ctx, textBase+uint64(8*i), []byte(data))
				if !errors.Is(err, kdpbridge.ErrNotAnswering) {
					t.Fatalf("WriteMem with every datagram lost = %v", err)
				}
				buf := make([]byte, 4)
				if _, err := c.ReadMem(ctx, textBase+uint64(8*i), buf); err != nil {
					t.Fatalf("ReadMem after the timeout: %v", err)
				}
				wrote := string(tgt.Mem(textBase+uint64(8*i), 4))
				if string(buf) != wrote {
					t.Fatalf("read %q, memory holds %q: client and stub out of step", buf, wrote)
				}
			}
		})
	}
}

func TestClientVersion10(t *testing.T) {
	ctx := testCtx(t)
	tgt, srv := newTarget(t)
	tgt.Version, tgt.Feature = 10, 0
	tgt.Map(0x1000, []byte("low memory"))
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 10)
	if _, err := c.ReadMem(ctx, 0x1000, buf); err != nil || string(buf) != "low memory" {
		t.Fatalf("ReadMem = %q, %v", buf, err)
	}
	got := srv.Received()
	if last := got[len(got)-1]; last[0] != byte(kdp.ReadMem) {
		t.Fatalf("version 10 read used request %#x, want READMEM", last[0])
	}
	if _, err := c.ReadMem(ctx, textBase, buf); err == nil || !strings.Contains(err.Error(), "beyond 32 bits") {
		t.Fatalf("64-bit read on a version 10 stub = %v", err)
	}
	if err := c.SetBreakpoint(ctx, 0x1000); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SetBreakpoint without the feature bit = %v", err)
	}
}

func TestTimeoutErrorMessage(t *testing.T) {
	err := error(&kdpbridge.TimeoutError{Addr: "10.0.0.2:41139", Request: kdp.ReadMem64, Tries: 3, PerTry: 5 * time.Second, Hint: "is the target still halted?"})
	want := "kdp READMEM64: peer not answering at 10.0.0.2:41139 after 3 tries of 5s (is the target still halted?)"
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err, want)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatal("TimeoutError does not report Timeout() == true")
	}
}

// TestClientTermination checks that a TERMINATION notification is acked as
// LLDB acks it and reported.
func TestClientTermination(t *testing.T) {
	ctx := testCtx(t)
	_, srv := newTarget(t)
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	term := &kdp.TerminationNotification{TermCode: kdp.TermExit, ExitCode: 3}
	if err := srv.Notify(ctx, term, 50*time.Millisecond, 20); err != nil {
		t.Fatal(err)
	}
	e, err := c.WaitException(ctx)
	if err != nil || !e.Terminated || e.TermCode != kdp.TermExit || e.ExitCode != 3 {
		t.Fatalf("WaitException = %+v, %v", e, err)
	}
	got := srv.Received()
	if ack := got[len(got)-1]; !bytes.Equal(ack, []byte{0x8e, 0, 16, 0, 0, 0, 0, 0}) {
		t.Fatalf("ack = %x, want 8e00100000000000", ack)
	}
}

// TestClientBadReply uses a peer whose first READMEM64 reply has a length
// field that does not match the datagram: the read fails with ErrBadLength,
// and the next request still takes the next seq (the stub ran the first).
func TestClientBadReply(t *testing.T) {
	ctx := testCtx(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tgt := kdptest.NewTarget()
	tgt.Map(textBase, []byte("0123456789abcdef"))
	seqs := make(chan uint8, 16)
	go func() {
		buf := make([]byte, 2048)
		var port uint16
		bad := true
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := kdp.Decode(buf[:n])
			if err != nil {
				continue
			}
			var reply kdp.Packet
			switch p := req.(type) {
			case *kdp.ReattachRequest:
				port, reply = p.ReplyPort, &kdp.ReattachReply{}
			case *kdp.ConnectRequest:
				reply = &kdp.ConnectReply{}
			default:
				reply, _ = tgt.Handle(req)
			}
			*reply.Hdr() = req.Hdr().ReplyHeader()
			b, _ := reply.MarshalBinary()
			if _, ok := req.(*kdp.ReadMem64Request); ok {
				seqs <- req.Hdr().Seq
				if bad {
					b[2]++ // len one more than the datagram
					bad = false
				}
			}
			conn.WriteToUDP(b, &net.UDPAddr{IP: from.IP, Port: int(port)})
		}
	}()
	c, err := kdpbridge.Connect(ctx, conn.LocalAddr().String(), steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4)
	if _, err := c.ReadMem(ctx, textBase, buf); !errors.Is(err, kdp.ErrBadLength) {
		t.Fatalf("ReadMem with a bad reply = %v, want ErrBadLength", err)
	}
	if _, err := c.ReadMem(ctx, textBase, buf); err != nil || string(buf) != "0123" {
		t.Fatalf("ReadMem after a bad reply = %q, %v", buf, err)
	}
	if s1, s2 := <-seqs, <-seqs; s2 != s1+1 {
		t.Fatalf("READMEM64 seqs %d then %d, want consecutive", s1, s2)
	}
}
