package kdpbridge_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
)

// TestClientLossyLink drives the client through a proxy that drops 20% of
// datagrams, duplicates 10% and reorders 10%, in both directions. Every
// operation must succeed or fail with a timeout (*TimeoutError), and every
// successful read must return what the target holds at that moment: a
// client that fell out of step with the stub's sequence number would accept
// a reply meant for another request, or stop getting replies at all.
func TestClientLossyLink(t *testing.T) {
	ops := 200
	if testing.Short() {
		ops = 60
	}
	ctx := testCtx(t)
	tgt, srv := newTarget(t)
	proxy := kdptest.NewLossyProxy(t, srv.Addr(), kdptest.DefaultLossy)
	opts := kdpbridge.ClientOptions{Timeout: 30 * time.Millisecond}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	// allowed accepts nil and timeouts; protocol errors only where the
	// operation may legitimately get one.
	var timeouts, okOps, streak, worstStreak int
	allowed := func(op string, err error, protocolOK bool) {
		t.Helper()
		var te *kdpbridge.TimeoutError
		var pe *kdp.ProtocolError
		switch {
		case err == nil || protocolOK && errors.As(err, &pe):
			okOps++
			streak = 0
			return
		case errors.As(err, &te) && errors.Is(err, kdpbridge.ErrNotAnswering):
			timeouts++
			streak++
			worstStreak = max(worstStreak, streak)
			if streak > 15 { // a loaded machine can stretch timeouts; a stuck session never recovers
				t.Fatalf("%s: %d operations in a row timed out: client and stub out of step? last: %v", op, streak, err)
			}
			return
		}
		t.Fatalf("%s: error is neither success nor a clear timeout: %v", op, err)
	}

	var c *kdpbridge.Client
	for try := 0; c == nil; try++ {
		var err error
		c, err = kdpbridge.Connect(ctx, proxy.Addr().String(), opts)
		if err != nil {
			allowed("connect", err, false)
			if try > 8 {
				t.Fatalf("no connection after %d tries: %v", try+1, err)
			}
		}
	}
	defer c.Close()

	const textLen = 8192
	var resumes, traps int
	for i := range ops {
		switch k := rng.IntN(10); {
		case k < 3:
			addr := textBase + uint64(rng.IntN(textLen))
			buf := make([]byte, 1+rng.IntN(1500))
			n, err := c.ReadMem(ctx, addr, buf)
			var pe *kdp.ProtocolError
			protocolOK := errors.As(err, &pe) && addr+uint64(len(buf)) > textBase+textLen
			allowed("read", err, protocolOK)
			if want := tgt.Mem(addr, n); !bytes.Equal(buf[:n], want) {
				t.Fatalf("op %d: read %d bytes at %#x: got bytes that the target does not hold", i, n, addr)
			}
		case k < 5:
			addr := textBase + uint64(rng.IntN(textLen-64))
			data := make([]byte, 1+rng.IntN(64))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			err := c.WriteMem(ctx, addr, data)
			allowed("write", err, false)
			if err == nil && !bytes.Equal(tgt.Mem(addr, len(data)), data) {
				t.Fatalf("op %d: write at %#x succeeded but memory differs", i, addr)
			}
		case k < 7:
			img, err := c.ReadRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ThreadState64)
			allowed("readregs", err, false)
			if err == nil && !bytes.Equal(img, tgt.Regs(kdp.X86ThreadState64)) {
				t.Fatalf("op %d: registers read differ from the target's", i)
			}
		case k < 8:
			img := make([]byte, kdp.X86ThreadState64Size)
			img[0] = byte(i)
			err := c.WriteRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ThreadState64, img)
			allowed("writeregs", err, false)
			if err == nil && tgt.Regs(kdp.X86ThreadState64)[0] != byte(i) {
				t.Fatalf("op %d: register write succeeded but rax differs", i)
			}
		case k < 9:
			addr := textBase + uint64(rng.IntN(textLen))
			err := c.SetBreakpoint(ctx, addr)
			allowed("set breakpoint", err, true)
			allowed("remove breakpoint", c.RemoveBreakpoint(ctx, addr), true)
		default:
			resumes++
			err := c.Resume(ctx)
			allowed("resume", err, false)
			if srv.State() != "running" {
				if err == nil {
					t.Fatalf("op %d: Resume succeeded but the peer is %s", i, srv.State())
				}
				continue // the RESUMECPUS never arrived: still halted
			}
			exc := &kdp.ExceptionNotification{Info: []kdp.ExcInfo{{Exception: kdp.ExcBreakpoint, Code: 3}}}
			if err := srv.Notify(ctx, exc, 20*time.Millisecond, 100); err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			e, err := c.WaitException(wctx)
			cancel()
			if err != nil || len(e.Info) != 1 || e.Info[0] != exc.Info[0] {
				t.Fatalf("op %d: WaitException = %+v, %v", i, e, err)
			}
			traps++
		}
	}
	// The session must still work: a few tries at most get a read through.
	for try := 0; ; try++ {
		buf := make([]byte, 64)
		n, err := c.ReadMem(ctx, textBase, buf)
		if err == nil {
			if !bytes.Equal(buf[:n], tgt.Mem(textBase, 64)) {
				t.Fatal("final read differs from the target")
			}
			break
		}
		allowed("final read", err, false)
		if try > 10 {
			t.Fatalf("final read keeps failing: %v", err)
		}
	}
	st := proxy.Stats()
	t.Logf("%d operations: %d results ok, %d timed out (worst streak %d); %d resumes, %d traps; proxy: %+v",
		ops, okOps, timeouts, worstStreak, resumes, traps, st)
	if st.Dropped == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("the proxy did not damage the link: %+v", st)
	}
	if okOps < ops/3 {
		t.Fatalf("only %d of %d operations succeeded", okOps, ops)
	}
}
