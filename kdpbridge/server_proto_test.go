package kdpbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// TestServerSequenceRules checks XNU's rules: a repeated request gets the
// saved reply without being executed again, an out-of-sequence one is
// dropped, a second debugger's CONNECT gets ALREADY_CONNECTED, and the
// waiting state ignores everything but CONNECT and REATTACH.
func TestServerSequenceRules(t *testing.T) {
	f := newLLDBFake()
	srv, _ := startServer(t, fakeWaiter{f}, ServerOptions{})
	p := newRawPeer(t, srv)

	// Waiting: a VERSION before CONNECT is dropped.
	b, _ := (&kdp.VersionRequest{}).MarshalBinary()
	p.sendBytes(b)
	if r := p.recv(200 * time.Millisecond); r != nil {
		t.Fatalf("VERSION while waiting answered: %x", r)
	}
	p.connect()

	// A write, then the same datagram again: the saved reply comes back
	// and the write is not repeated.
	w := &kdp.WriteMem64Request{Address: 0xffffc90000003000, Data: []byte{1}}
	w.Seq = p.seq
	p.seq++
	wb, _ := w.MarshalBinary()
	p.sendBytes(wb)
	first := p.recv(time.Second)
	_, _ = f.WriteMemory(0xffffc90000003000, []byte{9}) // changed behind the server's back
	p.sendBytes(wb)
	again := p.recv(time.Second)
	if first == nil || !bytes.Equal(first, again) {
		t.Fatalf("duplicate WRITEMEM64: replies %x and %x", first, again)
	}
	if c, _ := f.byteAtLocked(0xffffc90000003000); c != 9 {
		t.Fatalf("duplicate WRITEMEM64 executed again")
	}

	// Out of sequence: dropped.
	v := &kdp.VersionRequest{}
	v.Seq = p.seq + 5
	vb, _ := v.MarshalBinary()
	p.sendBytes(vb)
	if r := p.recv(200 * time.Millisecond); r != nil {
		t.Fatalf("out-of-sequence request answered: %x", r)
	}
	// The session is still in step.
	if r := p.request(&kdp.VersionRequest{}).(*kdp.VersionReply); r.Version != kdp.ProtocolVersion {
		t.Fatalf("version %d", r.Version)
	}

	// Another debugger: ALREADY_CONNECTED, sideband (the first one's next
	// request still works).
	q := newRawPeer(t, srv)
	c := &kdp.ConnectRequest{ReplyPort: q.port, ExcPort: q.port, Greeting: "other"}
	cb, _ := c.MarshalBinary()
	q.sendBytes(cb)
	rb := q.recv(time.Second)
	var cr kdp.ConnectReply
	if err := cr.UnmarshalBinary(rb); err != nil || cr.Error != kdp.ErrAlreadyConnected {
		t.Fatalf("second CONNECT: %x %v", rb, err)
	}
	if r := p.request(&kdp.HostInfoRequest{}).(*kdp.HostInfoReply); r.CPUType != kdp.CPUTypeX86_64 {
		t.Fatalf("hostinfo %+v", r)
	}

	// Unsupported flavor: BADFLAVOR with no data; too many bytes: BAD_NBYTES.
	if r := p.request(&kdp.ReadRegsRequest{CPU: 1, Flavor: 6}).(*kdp.ReadRegsReply); r.Error != kdp.ErrBadFlavor || len(r.State) != 0 {
		t.Fatalf("flavor 6: %+v", r)
	}
	if r := p.request(&kdp.ReadMem64Request{Address: 0xffffc90000003000, NBytes: 2048}).(*kdp.ReadMem64Reply); r.Error != kdp.ErrBadNBytes || len(r.Data) != 0 {
		t.Fatalf("2048 bytes: %+v", r)
	}
	// Partial read: what could be read, with BAD_ACCESS.
	if r := p.request(&kdp.ReadMem64Request{Address: 0xffffc90000004ff0, NBytes: 32}).(*kdp.ReadMem64Reply); r.Error != kdp.ErrBadAccess || len(r.Data) != 16 {
		t.Fatalf("partial read: error %v, %d bytes", r.Error, len(r.Data))
	}
	p.request(&kdp.DisconnectRequest{})
}

// TestServerBreakpointPolling runs the breakpoint cycle against a backend
// without TrapWaiter: the server must find the hit by polling, report
// EXCEPTION until acknowledged, hide the trap byte in reads, and restore it.
func TestServerBreakpointPolling(t *testing.T) {
	f := newLLDBFake()
	srv, tgt := startServer(t, fakePoller{f}, ServerOptions{ResumeReplyDelay: -1, ExceptionRetransmit: 30 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	p := newRawPeer(t, srv)
	p.connect()
	const bp = 0xffffffff81a17a20
	if r := p.request(&kdp.Breakpoint64SetRequest{Address: bp}).(*kdp.Breakpoint64SetReply); r.Error != 0 {
		t.Fatalf("set: %v", r.Error)
	}
	if r := p.request(&kdp.Breakpoint64SetRequest{Address: bp}).(*kdp.Breakpoint64SetReply); r.Error != kdp.ErrBreakpointAlreadySet {
		t.Fatalf("set twice: %v", r.Error)
	}
	if r := p.request(&kdp.ReadMem64Request{Address: bp, NBytes: 1}).(*kdp.ReadMem64Reply); r.Data[0] != 0x90 {
		t.Fatalf("read at breakpoint shows %#x, want the original 0x90", r.Data[0])
	}
	resumeSeq := p.seq
	p.request(&kdp.ResumeCPUsRequest{CPUMask: 1})

	// Do not ack the first notification: it must be sent again, same seq.
	var notes [][]byte
	for len(notes) < 2 {
		b := p.recv(3 * time.Second)
		if b == nil {
			t.Fatalf("no EXCEPTION (got %d)", len(notes))
		}
		notes = append(notes, b)
	}
	if !bytes.Equal(notes[0], notes[1]) {
		t.Fatalf("retransmitted EXCEPTION differs: %x vs %x", notes[0], notes[1])
	}
	var n kdp.ExceptionNotification
	if err := n.UnmarshalBinary(notes[0]); err != nil || n.Seq != 0 || n.Info[0] != (kdp.ExcInfo{Exception: kdp.ExcBreakpoint, Code: 3}) {
		t.Fatalf("EXCEPTION %x: %v", notes[0], err)
	}
	ack := &kdp.ExceptionAck{Header: kdp.Header{Seq: n.Seq, Len: n.Len}}
	ab, _ := ack.MarshalBinary()
	p.sendBytes(ab)
	// Notifications stop; requests continue from RESUMECPUS seq + 1.
	for p.recv(100*time.Millisecond) != nil {
	}
	if p.seq != resumeSeq+1 {
		t.Fatalf("seq %d", p.seq)
	}
	rr := p.request(&kdp.ReadRegsRequest{CPU: 1, Flavor: kdp.X86ThreadState64}).(*kdp.ReadRegsReply)
	if rip := binary.LittleEndian.Uint64(rr.State[128:]); rip != bp+1 {
		t.Fatalf("rip %#x, want %#x (one past the int3)", rip, uint64(bp+1))
	}
	if s, _ := f.ClearSignal(1); s != 0 {
		t.Errorf("the breakpoint's SIGTRAP was left pending (%d)", s)
	}
	if r := p.request(&kdp.Breakpoint64RemoveRequest{Address: bp}).(*kdp.Breakpoint64RemoveReply); r.Error != 0 {
		t.Fatalf("remove: %v", r.Error)
	}
	if r := p.request(&kdp.Breakpoint64RemoveRequest{Address: bp}).(*kdp.Breakpoint64RemoveReply); r.Error != kdp.ErrBreakpointNotFound {
		t.Fatalf("remove twice: %v", r.Error)
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("byte at breakpoint %#x after removal", c)
	}
	if !tgt.Suspended() {
		t.Fatalf("target runs while the debugger holds it")
	}
	p.request(&kdp.DisconnectRequest{})
}

// TestServerDisconnectRestores checks that DISCONNECT removes breakpoints and
// lets the target run, and that a new debugger's REATTACH while it runs
// halts it again (the NMI-like extension).
func TestServerDisconnectRestores(t *testing.T) {
	f := newLLDBFake()
	srv, tgt := startServer(t, fakeWaiter{f}, ServerOptions{ResumeReplyDelay: -1})
	p := newRawPeer(t, srv)
	p.connect()
	const bp = 0xffffffff81a17f00
	p.request(&kdp.Breakpoint64SetRequest{Address: bp})
	p.request(&kdp.DisconnectRequest{})
	time.Sleep(20 * time.Millisecond)
	if tgt.Suspended() {
		t.Fatalf("target still suspended after DISCONNECT")
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("breakpoint byte %#x left after DISCONNECT", c)
	}
	q := newRawPeer(t, srv)
	q.connect()
	if !tgt.Suspended() {
		t.Fatalf("target not halted for the new debugger")
	}
	r := q.request(&kdp.ReadRegsRequest{CPU: 1, Flavor: kdp.X86ThreadState64}).(*kdp.ReadRegsReply)
	regs, _ := f.GetState(1, tracer.FlavorGeneral)
	if binary.LittleEndian.Uint64(r.State[128:]) != regs.PC() {
		t.Fatalf("rip mismatch")
	}
	q.request(&kdp.DisconnectRequest{})
}

// TestServerExceptionAckTimeout checks XNU's give-up rule: an EXCEPTION sent
// ExceptionTries times without an ACK ends the session, removes the
// breakpoints and lets the target run; a new debugger can then connect.
func TestServerExceptionAckTimeout(t *testing.T) {
	f := newLLDBFake()
	f.threads[0].regs.Set("rip", 0xffffffff81a17b00)
	srv, tgt := startServer(t, fakePoller{f}, ServerOptions{ResumeReplyDelay: -1, PollInterval: 2 * time.Millisecond, ExceptionRetransmit: 10 * time.Millisecond, ExceptionTries: 3})
	p := newRawPeer(t, srv)
	p.connect()
	const bp = 0xffffffff81a17b02
	p.request(&kdp.Breakpoint64SetRequest{Address: bp})
	p.request(&kdp.ResumeCPUsRequest{CPUMask: 1})
	sent := 0
	for p.recv(300*time.Millisecond) != nil {
		sent++
	}
	if sent != 3 {
		t.Fatalf("EXCEPTION sent %d times, want 3", sent)
	}
	if tgt.Suspended() {
		t.Fatalf("target still halted after the debugger went away")
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("breakpoint left after the session was dropped")
	}
	q := newRawPeer(t, srv)
	q.connect()
	q.request(&kdp.DisconnectRequest{})
}

// TestServerReplyPorts checks where replies go: by default to the port the
// client announced in CONNECT (XNU's rule), with ReplyToSource to the
// datagram's source.
func TestServerReplyPorts(t *testing.T) {
	for _, toSource := range []bool{false, true} {
		srv, _ := startServer(t, fakeWaiter{newLLDBFake()}, ServerOptions{ReplyToSource: toSource})
		p := newRawPeer(t, srv)
		other := newRawPeer(t, srv) // the announced port
		c := &kdp.ConnectRequest{ReplyPort: other.port, ExcPort: other.port, Greeting: kdp.Greeting}
		b, _ := c.MarshalBinary()
		p.sendBytes(b)
		want, notWant := other, p
		if toSource {
			want, notWant = p, other
		}
		if r := want.recv(time.Second); r == nil {
			t.Fatalf("ReplyToSource=%v: no CONNECT reply where expected", toSource)
		}
		if r := notWant.recv(100 * time.Millisecond); r != nil {
			t.Fatalf("ReplyToSource=%v: CONNECT reply at the wrong port", toSource)
		}
	}
}

// TestServerTargetExits checks that a target exiting while it runs ends
// Serve with tracer.ErrExited after a TERMINATION notification.
func TestServerTargetExits(t *testing.T) {
	f := newLLDBFake()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, err := NewServer(conn, tracer.NewTarget(fakePoller{f}), ServerOptions{ResumeReplyDelay: -1, PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	p := newRawPeer(t, conn.LocalAddr().(*net.UDPAddr))
	p.connect()
	p.request(&kdp.ResumeCPUsRequest{CPUMask: 1})
	f.mu.Lock()
	f.exited = true
	f.mu.Unlock()
	var n kdp.TerminationNotification
	if err := n.UnmarshalBinary(p.recv(2 * time.Second)); err != nil || n.TermCode != kdp.TermExit {
		t.Fatalf("no TERMINATION: %v %+v", err, n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, tracer.ErrExited) {
			t.Fatalf("Serve: %v, want ErrExited", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after the target exited")
	}
	f.Stop()
}

// TestServerPlantedBreakpoints checks a backend that plants breakpoints
// itself (a GDB stub): memory is never patched, and the hit is reported with
// XNU's int3 semantics (RIP one past the breakpoint).
func TestServerPlantedBreakpoints(t *testing.T) {
	f := newLLDBFake()
	f.threads[0].regs.Set("rip", 0xffffffff81a17b00)
	srv, _ := startServer(t, fakeStub{fakeWaiter{f}}, ServerOptions{ResumeReplyDelay: -1})
	p := newRawPeer(t, srv)
	p.connect()
	const bp = 0xffffffff81a17b02
	if r := p.request(&kdp.Breakpoint64SetRequest{Address: bp}).(*kdp.Breakpoint64SetReply); r.Error != 0 {
		t.Fatalf("set: %v", r.Error)
	}
	if c, _ := f.byteAtLocked(bp); c != 0x90 {
		t.Fatalf("memory patched (%#x) although the backend plants breakpoints", c)
	}
	p.request(&kdp.ResumeCPUsRequest{CPUMask: 1})
	var n kdp.ExceptionNotification
	if err := n.UnmarshalBinary(p.recv(2 * time.Second)); err != nil || n.Info[0].Code != 3 {
		t.Fatalf("EXCEPTION: %v %+v", err, n)
	}
	ack := &kdp.ExceptionAck{Header: kdp.Header{Seq: n.Seq}}
	ab, _ := ack.MarshalBinary()
	p.sendBytes(ab)
	rr := p.request(&kdp.ReadRegsRequest{CPU: 1, Flavor: kdp.X86ThreadState64}).(*kdp.ReadRegsReply)
	if rip := binary.LittleEndian.Uint64(rr.State[128:]); rip != bp+1 {
		t.Fatalf("rip %#x, want %#x", rip, uint64(bp+1))
	}
	if r := p.request(&kdp.Breakpoint64RemoveRequest{Address: bp}).(*kdp.Breakpoint64RemoveReply); r.Error != 0 {
		t.Fatalf("remove: %v", r.Error)
	}
	f.mu.Lock()
	left := len(f.hwbps)
	f.mu.Unlock()
	if left != 0 {
		t.Fatalf("stub breakpoint left")
	}
	p.request(&kdp.DisconnectRequest{})
}
