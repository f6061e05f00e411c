package kdpbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
	"github.com/machtrace/machtrace/tracer"
)

// TestServerLossyLink runs the client against the server through a proxy
// that drops 20%, duplicates 10% and reorders 10% of the datagrams both ways.
// Every operation must either succeed with the right data or fail with a
// timeout; a desynchronised session would show as wrong data or other
// errors. Breakpoint cycles (set, resume, exception, ack, remove) are mixed
// in. At the end a second debugger must find the server in a sane state.
func TestServerLossyLink(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	f := newLLDBFake()
	f.threads[0].regs.Set("rip", 0xffffffff81a17b00) // the loop
	pristine := newLLDBFake()                        // the code as the debugger must see it, breakpoints hidden
	srv, _ := startServer(t, fakePoller{f}, ServerOptions{ResumeReplyDelay: -1, PollInterval: 2 * time.Millisecond, ExceptionRetransmit: 20 * time.Millisecond})
	proxy := kdptest.NewLossyProxy(t, srv, kdptest.DefaultLossy)
	opts := ClientOptions{Timeout: 60 * time.Millisecond, Tries: 4}
	ctx := context.Background()

	var c *Client
	var err error
	for range 5 {
		if c, err = Connect(ctx, proxy.Addr().String(), opts); err == nil {
			break
		}
		checkTimeout(t, "connect", err)
	}
	if err != nil {
		t.Fatalf("no connection in 5 tries: %v", err)
	}
	defer c.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	const bp = 0xffffffff81a17b02
	var ok, timedOut, cycles int
	note := func(op string, err error) bool {
		if err == nil {
			ok++
			return true
		}
		checkTimeout(t, op, err)
		timedOut++
		return false
	}
	for i := range 200 {
		switch {
		case i%20 == 19:
			if breakpointCycle(t, c, f, bp, note) {
				cycles++
			}
		case i%4 == 0:
			addr := uint64(0xffffffff81a17000) + uint64(rng.IntN(0x800))
			buf := make([]byte, 1+rng.IntN(1500))
			n, err := c.ReadMem(ctx, addr, buf)
			if note("read memory", err) {
				want := make([]byte, n)
				pristine.ReadMemory(addr, want)
				if n != len(buf) || !bytes.Equal(buf[:n], want) {
					t.Fatalf("op %d: read %d bytes at %#x: wrong data (%d bytes)", i, len(buf), addr, n)
				}
			}
		case i%4 == 1:
			img, err := c.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64)
			if note("read registers", err) {
				regs, _ := f.GetState(1, tracer.FlavorGeneral)
				if len(img) != kdp.X86ThreadState64Size || binary.LittleEndian.Uint64(img[128:]) != regs.PC() || binary.LittleEndian.Uint64(img[56:]) != regs.SP() {
					t.Fatalf("op %d: registers over KDP differ from the process's", i)
				}
			}
		case i%4 == 2:
			addr := uint64(0xffffc90000003000) + uint64(rng.IntN(0x1000))
			data := binary.LittleEndian.AppendUint64(nil, rng.Uint64())
			if note("write memory", c.WriteMem(ctx, addr, data)) {
				got := make([]byte, 8)
				f.ReadMemory(addr, got)
				if !bytes.Equal(got, data) {
					t.Fatalf("op %d: write at %#x did not land", i, addr)
				}
			}
		default:
			img, err := c.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64)
			if !note("read registers", err) {
				continue
			}
			binary.LittleEndian.PutUint64(img[0:], uint64(i))
			if note("write registers", c.WriteRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64, img)) {
				regs, _ := f.GetState(1, tracer.FlavorGeneral)
				if v, _ := regs.Get("rax"); v != uint64(i) {
					t.Fatalf("op %d: rax %#x after writing %#x", i, v, i)
				}
			}
		}
	}
	st := proxy.Stats()
	t.Logf("%d operations succeeded, %d timed out, %d breakpoint cycles; proxy: %+v", ok, timedOut, cycles, st)
	if ok < 10*timedOut || cycles < 5 {
		t.Fatalf("too many failures for the damage: %d ok, %d timeouts, %d cycles", ok, timedOut, cycles)
	}
	if st.Dropped == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("the proxy did no damage: %+v", st)
	}

	// A second debugger on a clean link takes over with REATTACH and finds
	// the server answering in step, with no breakpoint left behind.
	_ = c.Close()
	c2, err := Connect(ctx, srv.String(), fastClient)
	if err != nil {
		t.Fatalf("clean reconnect: %v", err)
	}
	defer c2.Close()
	if _, err := c2.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64); err != nil {
		t.Fatalf("clean reconnect: %v", err)
	}
	if b, _ := f.byteAtLocked(bp); b != 0x90 {
		t.Fatalf("breakpoint byte %#x left after the session ended", b)
	}
	_ = c2.Disconnect(ctx)
}

// breakpointCycle sets a breakpoint in the fake's loop, resumes, waits for
// the exception, checks the PC, rewinds it and removes the breakpoint. It
// reports whether the whole cycle succeeded; an operation that timed out
// ends the cycle (the next one starts from whatever state the server is in).
func breakpointCycle(t *testing.T, c *Client, f *fakeCPU, bp uint64, note func(string, error) bool) bool {
	t.Helper()
	ctx := context.Background()
	err := c.SetBreakpoint(ctx, bp)
	if errors.Is(err, kdp.ErrBreakpointAlreadySet) {
		err = nil // an earlier SET landed but its reply was lost
	}
	if !note("set breakpoint", err) {
		return false
	}
	if !note("resume", c.Resume(ctx)) {
		// Only the reply may have been lost: the target may be running.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := c.WaitException(wctx); err != nil {
			return false
		}
	} else {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := c.WaitException(wctx); err != nil {
			t.Fatalf("resumed with a breakpoint in the loop, but no exception: %v", err)
		}
	}
	img, err := c.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64)
	if !note("read registers", err) {
		return false
	}
	if pc := binary.LittleEndian.Uint64(img[128:]); pc != bp+1 {
		t.Fatalf("pc %#x after the hit, want %#x", pc, bp+1)
	}
	binary.LittleEndian.PutUint64(img[128:], bp)
	if !note("rewind pc", c.WriteRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64, img)) {
		return false
	}
	err = c.RemoveBreakpoint(ctx, bp)
	if errors.Is(err, kdp.ErrBreakpointNotFound) {
		err = nil // an earlier REMOVE landed but its reply was lost
	}
	if !note("remove breakpoint", err) {
		return false
	}
	if b, _ := f.byteAtLocked(bp); b != 0x90 {
		t.Fatalf("breakpoint byte %#x after removal", b)
	}
	return true
}

// checkTimeout fails the test unless err is the client's clear timeout.
func checkTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrNotAnswering) {
		t.Fatalf("%s over a lossy link: %v (want success or a *TimeoutError)", op, err)
	}
}
