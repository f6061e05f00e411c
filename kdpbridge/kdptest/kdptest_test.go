package kdptest_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
)

func TestTranscriptDirOverride(t *testing.T) {
	t.Setenv(kdptest.TranscriptEnv, filepath.Join(t.TempDir(), "missing"))
	if _, err := kdptest.TranscriptDir(); !errors.Is(err, kdptest.ErrNoTranscripts) {
		t.Fatalf("TranscriptDir with a missing override = %v", err)
	}
	dir := t.TempDir()
	line := "L>S 0.1 VERSION 0301080037130000\nS>L 0.2 reply_VERSION 83011800371300000c000000010000000000000000000000\n"
	if err := os.WriteFile(filepath.Join(dir, "a.hex.txt"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(kdptest.TranscriptEnv, dir)
	ts := kdptest.Transcripts(t)
	if len(ts) != 1 || len(ts[0].Datagrams) != 2 || len(ts[0].FromLLDB()) != 1 || ts[0].Datagrams[1].Name != "reply_VERSION" {
		t.Fatalf("Transcripts = %+v", ts)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.hex.txt"), []byte("X>Y 1 A 00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kdptest.ReadTranscripts(dir); err == nil {
		t.Fatal("a bad direction parsed")
	}
}

// TestLossyProxyRates sends datagrams through a proxy to an echo peer and
// checks that the damage is roughly what was asked, in both directions.
func TestLossyProxyRates(t *testing.T) {
	echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return
			}
			echo.WriteToUDP(buf[:n], from)
		}
	}()
	p := kdptest.NewLossyProxy(t, echo.LocalAddr().(*net.UDPAddr), kdptest.LossyOptions{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, MaxDelay: 2 * time.Millisecond, Seed: 1})
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1000
	counted := make(chan int)
	go func() {
		got := 0
		buf := make([]byte, 64)
		for {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				counted <- got
				return
			}
			got++
		}
	}()
	for i := range n {
		d := []byte{byte(kdp.Version), byte(i), 8, 0, 0, 0, 0, 0}
		if _, err := c.WriteToUDP(d, p.Addr()); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // let the socket buffers drain
		}
	}
	got := <-counted
	st := p.Stats()
	t.Logf("%d sent, %d came back; %+v", n, got, st)
	// Two passes of 20% loss and 10% duplication: about 0.8*1.1 squared = 77%.
	if got < n*60/100 || got > n*95/100 {
		t.Fatalf("%d of %d came back, want about 77%%", got, n)
	}
	if st.Dropped == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("stats %+v", st)
	}
	p.Close()
	p.Close() // idempotent
}

func TestLossyProxyRejectsRemotePeer(t *testing.T) {
	ft := &fatalTB{TB: t}
	func() {
		defer func() { recover() }()
		kdptest.NewLossyProxy(ft, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: kdp.Port}, kdptest.DefaultLossy)
	}()
	if !ft.failed {
		t.Fatal("a proxy to a non-loopback peer was started")
	}
}

type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed = true
	panic("fatal")
}
