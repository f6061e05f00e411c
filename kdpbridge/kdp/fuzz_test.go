package kdp_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
)

// Packet families, one fuzz target each. Every target decodes the input as
// each request code of its family (both reply bits) by overwriting byte 0,
// then checks the invariants in checkDecode.
var (
	familySession  = []kdp.Request{kdp.Connect, kdp.Disconnect, kdp.Reattach, kdp.HostInfo, kdp.Version, kdp.KernelVersion, kdp.MaxBytes, kdp.HostReboot, kdp.Suspend, kdp.ResumeCPUs}
	familyMemory   = []kdp.Request{kdp.ReadMem, kdp.WriteMem, kdp.ReadMem64, kdp.WriteMem64, kdp.ReadPhysMem64, kdp.WritePhysMem64, kdp.Regions}
	familyRegs     = []kdp.Request{kdp.ReadRegs, kdp.WriteRegs, kdp.ReadIOPort, kdp.WriteIOPort, kdp.ReadMSR64, kdp.WriteMSR64}
	familyBreak    = []kdp.Request{kdp.BreakpointSet, kdp.BreakpointRemove, kdp.Breakpoint64Set, kdp.Breakpoint64Remove}
	familyNotify   = []kdp.Request{kdp.Exception, kdp.Termination}
	familyMisc     = []kdp.Request{kdp.Load, kdp.ImagePath, kdp.DumpInfo}
	fuzzSeedsExtra = []string{
		// kdp-protocol.md §13 vectors not in the LLDB captures.
		"94 04 1c 00 00 00 00 00 00 00 00 00 cf fa ed fe 07 00 00 01 03 00 00 00 02 00 00 00",
		"0d 00 2c 00 00 00 00 00 01 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00 00 00 00 00 de ad be ef de ad be ef de ad be ef de ad be ef",
		"91 01 18 00 00 00 00 00 01 00 00 00 00 00 00 00 ff ff ff ff 07 00 00 00",
		"9d 04 14 00 00 00 00 00 00 00 00 00 01 0d 00 00 00 00 00 00",
		"1c 03 10 00 00 00 00 00 fe ff 80 00 02 00 34 12",
		"1a 02 17 00 00 00 00 00 00 10 00 00 00 00 00 00 01 00 00 00 fe ff 90",
	}
)

// seed adds the transcripts' datagrams (when present) and the extra vectors
// to f's corpus, with and without length fixing.
func seed(f *testing.F) {
	dir, err := kdptest.TranscriptDir()
	if err == nil {
		ts, err := kdptest.ReadTranscripts(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, tr := range ts {
			for _, d := range tr.Datagrams {
				f.Add(d.Bytes, false)
			}
		}
	}
	for _, s := range fuzzSeedsExtra {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	dump, _ := (&kdp.DumpInfoReply{Name: "core", DestIP: "10.0.0.1", Type: kdp.DumpDisable}).MarshalBinary()
	f.Add(dump, false)
	f.Add([]byte{}, true)
}

func fuzzFamily(f *testing.F, family []kdp.Request) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte, fixLen bool) {
		checkDecode(t, data) // as is, through the registry
		if len(data) < kdp.HeaderLen {
			return
		}
		b := bytes.Clone(data)
		if fixLen && len(b) <= 0xffff {
			b[2], b[3] = byte(len(b)), byte(len(b)>>8)
		}
		for _, r := range family {
			for _, reply := range []byte{0, 0x80} {
				b[0] = byte(r) | reply
				checkDecode(t, b)
				p, _ := kdp.NewPacket(r, reply != 0)
				if err := p.UnmarshalBinary(b); err == nil {
					checkRoundTrip(t, b, p)
				}
			}
		}
	})
}

// checkDecode asserts Decode's contract: the packet is nil exactly when the
// error is not, and a decoded packet round-trips stably.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	p, err := kdp.Decode(b)
	if (err != nil) != (p == nil) {
		t.Fatalf("Decode(%x) = %#v, %v: want exactly one of packet and error", b, p, err)
	}
	var ps kdp.Parser
	q, qerr := ps.Decode(b)
	if (qerr != nil) != (q == nil) {
		t.Fatalf("Parser.Decode(%x) = %#v, %v: want exactly one of packet and error", b, q, qerr)
	}
	if (qerr == nil) != (err == nil) || err == nil && !reflect.DeepEqual(p, q) {
		t.Fatalf("Parser.Decode(%x) = %#v, %v; Decode = %#v, %v", b, q, qerr, p, err)
	}
	if err == nil {
		checkRoundTrip(t, b, p)
	}
}

// checkRoundTrip asserts that encoding p and decoding the result is stable:
// decode(encode(p)) encodes to the same bytes and equals itself decoded again.
func checkRoundTrip(t *testing.T, orig []byte, p kdp.Packet) {
	t.Helper()
	m1, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("decoded %x to %#v, which does not encode: %v", orig, p, err)
	}
	p2, err := kdp.Decode(m1)
	if err != nil {
		t.Fatalf("decoded %x, encoded %x, which does not decode: %v", orig, m1, err)
	}
	m2, err := p2.MarshalBinary()
	if err != nil {
		t.Fatalf("second encode of %#v: %v", p2, err)
	}
	if !bytes.Equal(m1, m2) {
		t.Fatalf("round trip unstable for %x:\n first %x\nsecond %x", orig, m1, m2)
	}
	p3, err := kdp.Decode(m2)
	if err != nil || !reflect.DeepEqual(p2, p3) {
		t.Fatalf("round trip unstable for %x: %#v then %#v (%v)", orig, p2, p3, err)
	}
}

func FuzzUnmarshalSession(f *testing.F)      { fuzzFamily(f, familySession) }
func FuzzUnmarshalMemory(f *testing.F)       { fuzzFamily(f, familyMemory) }
func FuzzUnmarshalRegisters(f *testing.F)    { fuzzFamily(f, familyRegs) }
func FuzzUnmarshalBreakpoint(f *testing.F)   { fuzzFamily(f, familyBreak) }
func FuzzUnmarshalNotification(f *testing.F) { fuzzFamily(f, familyNotify) }
func FuzzUnmarshalMisc(f *testing.F)         { fuzzFamily(f, familyMisc) }

// FuzzHeader checks the header codec alone.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0x94, 0x5a, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h kdp.Header
		if err := h.UnmarshalBinary(b); err != nil {
			if len(b) >= kdp.HeaderLen {
				t.Fatalf("UnmarshalBinary(%x): %v", b, err)
			}
			return
		}
		m, _ := h.MarshalBinary()
		if !bytes.Equal(m, b[:kdp.HeaderLen]) {
			t.Fatalf("header %x re-encodes to %x", b[:kdp.HeaderLen], m)
		}
	})
}

// TestFamiliesCoverEveryRequest keeps the fuzz families complete.
func TestFamiliesCoverEveryRequest(t *testing.T) {
	seen := map[kdp.Request]bool{}
	for _, fam := range [][]kdp.Request{familySession, familyMemory, familyRegs, familyBreak, familyNotify, familyMisc} {
		for _, r := range fam {
			seen[r] = true
		}
	}
	for r := kdp.Request(0); r < kdp.NumRequests; r++ {
		if !seen[r] {
			t.Errorf("request %v is in no fuzz family", r)
		}
	}
}
