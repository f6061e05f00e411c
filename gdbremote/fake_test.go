package gdbremote

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machtrace/machtrace/tracer"
)

// fakeStub is a tiny GDB stub for what real QEMU cannot be made to do on
// demand: go silent, corrupt a checksum, interleave a stop reply with an
// ack. handle returns the replies to one packet (nil: stay silent).
type fakeStub struct {
	l      net.Listener
	handle func(pkt string) []string
	mu     sync.Mutex
	got    []string
	// before, if set, is written raw before the ack of the first packet.
	before string
	// onNak is resent (framed) when the client naks a reply.
	onNak string
	// slowAck delays the ack and reply of the first packet.
	slowAck time.Duration
}

func newFakeStub(t *testing.T, handle func(string) []string) *fakeStub {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeStub{l: l, handle: handle}
	t.Cleanup(func() { l.Close() })
	go f.serve()
	return f
}

func (f *fakeStub) addr() string { return f.l.Addr().String() }

func frameRaw(s string) string { return fmt.Sprintf("$%s#%02x", s, checksum([]byte(s))) }

func (f *fakeStub) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.conn(c)
	}
}

func (f *fakeStub) conn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	first := true
	for {
		b, err := br.ReadByte()
		if err != nil {
			return
		}
		if b == '-' && f.onNak != "" {
			c.Write([]byte(frameRaw(f.onNak)))
			continue
		}
		if b != '$' {
			continue
		}
		body, err := br.ReadString('#')
		if err != nil {
			return
		}
		var cs [2]byte
		if _, err := br.Read(cs[:]); err != nil {
			return
		}
		pkt := strings.TrimSuffix(body, "#")
		f.mu.Lock()
		f.got = append(f.got, pkt)
		f.mu.Unlock()
		replies := f.handle(pkt)
		if replies == nil {
			continue // silent
		}
		if first && f.before != "" {
			c.Write([]byte(f.before))
		}
		if first && f.slowAck > 0 {
			time.Sleep(f.slowAck)
		}
		first = false
		c.Write([]byte("+"))
		for _, r := range replies {
			if strings.HasPrefix(r, "RAW:") {
				c.Write([]byte(r[4:]))
				continue
			}
			c.Write([]byte(frameRaw(r)))
		}
	}
}

const fakeXML = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>`

const fakeCore = `<?xml version="1.0"?><feature name="org.gnu.gdb.i386.core">
<reg name="rax" bitsize="64"/><reg name="rsp" bitsize="64" regnum="1"/><reg name="rip" bitsize="64"/>
<reg name="eflags" bitsize="32"/><reg name="cr3" bitsize="64"/></feature>`

// fakeHandshake answers the packets Dial sends.
func fakeHandshake(pkt string) []string {
	switch {
	case strings.HasPrefix(pkt, "qSupported"):
		return []string{"PacketSize=1000;qXfer:features:read+;vContSupported+"}
	case strings.HasPrefix(pkt, "qXfer:features:read:target.xml:"):
		return []string{"l" + fakeXML}
	case strings.HasPrefix(pkt, "qXfer:features:read:core.xml:"):
		return []string{"l" + fakeCore}
	case pkt == "vCont?":
		return []string{"vCont;c;C;s;S"}
	case pkt == "?":
		return []string{"T05thread:01;"}
	case pkt == "qfThreadInfo":
		return []string{"m01"}
	case pkt == "qsThreadInfo":
		return []string{"l"}
	case strings.HasPrefix(pkt, "qThreadExtraInfo"):
		return []string{fmt.Sprintf("%x", "CPU#0 [running]")}
	case strings.HasPrefix(pkt, "Hg"):
		return []string{"OK"}
	}
	return nil
}

func TestSilentStubAtConnect(t *testing.T) {
	f := newFakeStub(t, func(string) []string { return nil })
	start := time.Now()
	_, err := Dial(f.addr(), &Options{Timeout: 300 * time.Millisecond})
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial to a silent stub: %v, want a *TimeoutError", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %v to give up", d)
	}
	if !strings.Contains(err.Error(), "qSupported") {
		t.Errorf("error %q does not name the request", err)
	}
}

func TestStubGoesSilent(t *testing.T) {
	var mu sync.Mutex
	silent := false
	f := newFakeStub(t, func(pkt string) []string {
		mu.Lock()
		defer mu.Unlock()
		if silent {
			return nil
		}
		return fakeHandshake(pkt)
	})
	cl, err := Dial(f.addr(), &Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Target.GSize != 8+8+8+4+8 || cl.Target.Regs[1].Name != "rsp" {
		t.Errorf("fake layout: %+v", cl.Target)
	}
	mu.Lock()
	silent = true
	mu.Unlock()
	start := time.Now()
	var buf [8]byte
	_, err = cl.ReadMemory(0x1000, buf[:])
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent stub: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v", d)
	}
	// The connection is dead now: later calls fail at once, the same way.
	start = time.Now()
	if _, err := cl.ReadRegisters("01"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after a timeout: %v, want the same timeout error", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second call took %v", d)
	}
}

func TestStopBeforeAckAndBadChecksum(t *testing.T) {
	naked := false
	f := newFakeStub(t, func(pkt string) []string {
		switch {
		case strings.HasPrefix(pkt, "m1000,"):
			if !naked {
				naked = true
				// corrupt checksum: the client must nak, and we resend
				return []string{"RAW:$0102#00"}
			}
			return []string{"0102"}
		case pkt == "g":
			// run-length encoded: 0x00 * 36 bytes = "0" * 72
			return []string{"0*" + string(rune(29+71))}
		}
		return fakeHandshake(pkt)
	})
	f.before = frameRaw("T02thread:01;")
	f.onNak = "0102"
	cl, err := Dial(f.addr(), &Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s := cl.ConnectStops(); len(s) != 1 || s[0].Signal != 2 || s[0].Thread != "01" {
		t.Errorf("connect stops = %+v, want the T02 sent before the ack", s)
	}
	g, err := cl.ReadRegisters("01")
	if err != nil || len(g) != cl.Target.GSize {
		t.Fatalf("g: %x, %v", g, err)
	}
	var buf [2]byte
	if _, err := cl.ReadMemory(0x1000, buf[:]); err != nil || buf != [2]byte{1, 2} {
		t.Fatalf("read after a corrupt reply and a nak: %x, %v; want 0102", buf, err)
	}
	if !naked {
		t.Error("the fake never sent the corrupt reply")
	}
}

// TestSlowFirstAck: QEMU under load took over 500 ms to ack the first
// packet; a client that resent it got two qSupported replies and took the
// second for the answer to qXfer. The client must wait, not resend.
func TestSlowFirstAck(t *testing.T) {
	f := newFakeStub(t, fakeHandshake)
	f.slowAck = 800 * time.Millisecond
	cl, err := Dial(f.addr(), &Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.got {
		if strings.HasPrefix(p, "qSupported") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("qSupported sent %d times, want once", n)
	}
}

// TestNoTargetXML: a stub without qXfer:features (VMware's, reportedly)
// gets gdb's default amd64 numbering.
func TestNoTargetXML(t *testing.T) {
	f := newFakeStub(t, func(pkt string) []string {
		switch {
		case strings.HasPrefix(pkt, "qSupported"):
			return []string{"PacketSize=1000"}
		case pkt == "g":
			// rip (register 16) = 0xffffffff81000000, the rest zero
			return []string{strings.Repeat("00", 16*8) + "00000081ffffffff" + strings.Repeat("00", 536-17*8)}
		}
		return fakeHandshake(pkt)
	})
	cl, err := Dial(f.addr(), &Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cl.Target.GSize != 536 || cl.Target.Arch != tracer.ArchAMD64 {
		t.Fatalf("default layout: g size %d, arch %v; want 536, amd64", cl.Target.GSize, cl.Target.Arch)
	}
	b, err := NewBackend(cl)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := b.GetState(1, tracer.FlavorGeneral)
	if err != nil {
		t.Fatal(err)
	}
	if regs.PC() != 0xffffffff81000000 {
		t.Errorf("rip %#x", regs.PC())
	}
	if _, err := b.GetState(1, tracer.FlavorSystem); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("system flavor without control registers: %v, want ErrUnsupported", err)
	}
}

func TestParseStop(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		sig    uint8
		thread string
		reason string
	}{
		{"T02thread:01;", true, 2, "01", ""},
		{"T05thread:p01.02;swbreak:;", true, 5, "p01.02", "swbreak"},
		{"S05", true, 5, "", ""},
		{"W00", true, 0, "", ""},
		{"OK", false, 0, "", ""},
		{"E14", false, 0, "", ""},
		{"0102", false, 0, "", ""},
		{"T", false, 0, "", ""},
		{"Sxx", false, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, ok := parseStop([]byte(tt.in))
			if ok != tt.ok || ok && (s.Signal != tt.sig || s.Thread != tt.thread || s.Reason != tt.reason) {
				t.Fatalf("parseStop(%q) = %+v, %v", tt.in, s, ok)
			}
		})
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"}\x03", "#"},
		{"}]", "}"},
		{"0* ", "0000"}, // ' ' is 32: 3 more repeats
		{"ab*\"c", "abbbbbbc"},
	}
	for _, tt := range tests {
		if got := string(decodeBody([]byte(tt.in))); got != tt.want {
			t.Errorf("decodeBody(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseThreadID(t *testing.T) {
	tests := []struct {
		in       string
		pid, tid uint64
	}{
		{"01", 0, 1}, {"p01.02", 1, 2}, {"p1f.a", 0x1f, 0xa}, {"-1", 0, 0}, {"p01.-1", 1, 0},
	}
	for _, tt := range tests {
		pid, tid, err := parseThreadID(tt.in)
		if err != nil || pid != tt.pid || tid != tt.tid {
			t.Errorf("parseThreadID(%q) = %d, %d, %v", tt.in, pid, tid, err)
		}
	}
}

func TestTargetDescriptionQEMU(t *testing.T) {
	files := map[string]string{}
	for _, n := range []string{"target.xml", "i386-64bit.xml"} {
		b, err := os.ReadFile("testdata/qemu-7.2/" + n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	td, err := parseTargetDescription(func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("no %s", name)
		}
		return []byte(s), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The offsets measured on the wire (kernel-target.md, section 4).
	want := map[string]struct {
		off    int
		flavor tracer.Flavor
	}{
		"rax": {0, tracer.FlavorGeneral}, "rsi": {32, tracer.FlavorGeneral}, "rip": {128, tracer.FlavorGeneral},
		"eflags": {136, tracer.FlavorGeneral}, "cs": {140, tracer.FlavorGeneral}, "fs_base": {164, tracer.FlavorGeneral},
		"k_gs_base": {180, tracer.FlavorSystem}, "cr0": {188, tracer.FlavorSystem}, "cr3": {204, tracer.FlavorSystem},
		"efer": {228, tracer.FlavorSystem}, "st0": {236, tracer.FlavorFloat}, "fctrl": {316, tracer.FlavorFloat},
		"xmm0": {348, tracer.FlavorFloat}, "mxcsr": {604, tracer.FlavorFloat},
	}
	seen := 0
	for _, r := range td.Regs {
		if w, ok := want[r.Name]; ok {
			seen++
			if r.Offset != w.off || r.Flavor != w.flavor {
				t.Errorf("%s: offset %d flavor %v, want %d %v", r.Name, r.Offset, r.Flavor, w.off, w.flavor)
			}
		}
	}
	if seen != len(want) || td.GSize != 608 || td.Arch != tracer.ArchAMD64 {
		t.Errorf("found %d of %d registers, g size %d, arch %v", seen, len(want), td.GSize, td.Arch)
	}
}
