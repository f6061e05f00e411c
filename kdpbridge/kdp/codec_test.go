package kdp_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func hdr(req kdp.Request, reply bool, seq uint8, n uint16, key uint32) kdp.Header {
	return kdp.Header{Request: req, Reply: reply, Seq: seq, Len: n, Key: key}
}

// x86GPR is TV7's register image: rbp, rsp, rip, rflags, cs set.
func x86GPR() []byte {
	b := make([]byte, kdp.X86ThreadState64Size)
	put := func(off int, v uint64) {
		for i := range 8 {
			b[off+i] = byte(v >> (8 * i))
		}
	}
	put(48, 0xffffff80aabbcc40)
	put(56, 0xffffff80aabbcc00)
	put(128, 0xffffff8000201235)
	put(136, 0x246)
	put(144, 0x8)
	return b
}

// vectors are the test vectors of kdp-protocol.md §13 and LLDB's captures.
var vectors = []struct {
	name string
	hex  string
	want kdp.Packet
}{
	{"TV1 reattach", "12 00 0a 00 00 00 00 00 c3 50",
		&kdp.ReattachRequest{Header: hdr(kdp.Reattach, false, 0, 10, 0), ReplyPort: 50000}},
	{"TV1r reattach reply", "92 00 08 00 00 00 00 00",
		&kdp.ReattachReply{Header: hdr(kdp.Reattach, true, 0, 8, 0)}},
	{"TV2 connect", "00 00 23 00 00 00 00 00 c3 50 c3 50 47 72 65 65 74 69 6e 67 73 20 66 72 6f 6d 20 4c 4c 44 42 2e 2e 2e 00",
		&kdp.ConnectRequest{Header: hdr(kdp.Connect, false, 0, 35, 0), ReplyPort: 50000, ExcPort: 50000, Greeting: kdp.Greeting}},
	{"TV2r connect reply", "80 00 0c 00 00 00 00 00 00 00 00 00",
		&kdp.ConnectReply{Header: hdr(kdp.Connect, true, 0, 12, 0)}},
	{"TV2e already connected", "80 00 0c 00 00 00 00 00 01 00 00 00",
		&kdp.ConnectReply{Header: hdr(kdp.Connect, true, 0, 12, 0), Error: kdp.ErrAlreadyConnected}},
	{"TV3 version", "03 01 08 00 00 00 00 00",
		&kdp.VersionRequest{Header: hdr(kdp.Version, false, 1, 8, 0)}},
	{"TV3r version reply", "83 01 18 00 00 00 00 00 0c 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00",
		&kdp.VersionReply{Header: hdr(kdp.Version, true, 1, 24, 0), Version: 12, Feature: 1}},
	{"TV4 hostinfo", "02 02 08 00 00 00 00 00",
		&kdp.HostInfoRequest{Header: hdr(kdp.HostInfo, false, 2, 8, 0)}},
	{"TV4r hostinfo x86_64", "82 02 14 00 00 00 00 00 0f 00 00 00 07 00 00 01 03 00 00 00",
		&kdp.HostInfoReply{Header: hdr(kdp.HostInfo, true, 2, 20, 0), CPUMask: 0xf, CPUType: kdp.CPUTypeX86_64, CPUSubtype: 3}},
	{"TV4r hostinfo arm64", "82 02 14 00 00 00 00 00 01 00 00 00 0c 00 00 01 00 00 00 00",
		&kdp.HostInfoReply{Header: hdr(kdp.HostInfo, true, 2, 20, 0), CPUMask: 1, CPUType: kdp.CPUTypeARM64}},
	{"TV5 kernelversion", "18 03 08 00 00 00 00 00",
		&kdp.KernelVersionRequest{Header: hdr(kdp.KernelVersion, false, 3, 8, 0)}},
	{"TV5r kernelversion reply", "98 03 18 00 00 00 00 00 45 46 49 20 47 6f 20 4b 44 50 20 73 74 75 62 00",
		&kdp.KernelVersionReply{Header: hdr(kdp.KernelVersion, true, 3, 24, 0), Version: "EFI Go KDP stub"}},
	{"TV6 readmem64", "14 04 14 00 00 00 00 00 00 00 20 00 80 ff ff ff 10 00 00 00",
		&kdp.ReadMem64Request{Header: hdr(kdp.ReadMem64, false, 4, 20, 0), Address: 0xffffff8000200000, NBytes: 16}},
	{"TV6r readmem64 reply", "94 04 1c 00 00 00 00 00 00 00 00 00 cf fa ed fe 07 00 00 01 03 00 00 00 02 00 00 00",
		&kdp.ReadMem64Reply{Header: hdr(kdp.ReadMem64, true, 4, 28, 0), Data: []byte{0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0, 2, 0, 0, 0}}},
	{"TV6e readmem64 bad access", "94 04 0c 00 00 00 00 00 04 00 00 00",
		&kdp.ReadMem64Reply{Header: hdr(kdp.ReadMem64, true, 4, 12, 0), Error: kdp.ErrBadAccess}},
	{"TV7 readregs", "07 05 10 00 00 00 00 00 01 00 00 00 04 00 00 00",
		&kdp.ReadRegsRequest{Header: hdr(kdp.ReadRegs, false, 5, 16, 0), CPU: 1, Flavor: kdp.X86ThreadState64}},
	{"TV8 readregs badflavor", "87 06 0c 00 00 00 00 00 03 00 00 00",
		&kdp.ReadRegsReply{Header: hdr(kdp.ReadRegs, true, 6, 12, 0), Error: kdp.ErrBadFlavor}},
	{"TV8 readmem64 bad nbytes", "94 07 0c 00 00 00 00 00 02 00 00 00",
		&kdp.ReadMem64Reply{Header: hdr(kdp.ReadMem64, true, 7, 12, 0), Error: kdp.ErrBadNBytes}},
	{"TV9 breakpoint64 set", "16 08 10 00 00 00 00 00 34 12 20 00 80 ff ff ff",
		&kdp.Breakpoint64SetRequest{Header: hdr(kdp.Breakpoint64Set, false, 8, 16, 0), Address: 0xffffff8000201234}},
	{"TV9r already set", "96 08 0c 00 00 00 00 00 66 00 00 00",
		&kdp.Breakpoint64SetReply{Header: hdr(kdp.Breakpoint64Set, true, 8, 12, 0), Error: kdp.ErrBreakpointAlreadySet}},
	{"TV10 resumecpus", "0c 09 0c 00 00 00 00 00 0f 00 00 00",
		&kdp.ResumeCPUsRequest{Header: hdr(kdp.ResumeCPUs, false, 9, 12, 0), CPUMask: 0xf}},
	{"TV10r resumecpus reply", "8c 09 08 00 00 00 00 00",
		&kdp.ResumeCPUsReply{Header: hdr(kdp.ResumeCPUs, true, 9, 8, 0)}},
	{"TV11 exception", "0d 00 1c 00 00 00 00 00 01 00 00 00 00 00 00 00 06 00 00 00 03 00 00 00 00 00 00 00",
		&kdp.ExceptionNotification{Header: hdr(kdp.Exception, false, 0, 28, 0), Info: []kdp.ExcInfo{{Exception: kdp.ExcBreakpoint, Code: 3}}}},
	{"TV11 LLDB ack keeps len 28", "8d 00 1c 00 00 00 00 00",
		&kdp.ExceptionAck{Header: hdr(kdp.Exception, true, 0, 28, 0)}},
	{"TV12 disconnect", "01 0a 08 00 00 00 00 00",
		&kdp.DisconnectRequest{Header: hdr(kdp.Disconnect, false, 10, 8, 0)}},
	{"session9 writemem64", "150f160037130000803e000000c9ffff020000004142",
		&kdp.WriteMem64Request{Header: hdr(kdp.WriteMem64, false, 15, 22, 0x1337), Address: 0xffffc90000003e80, Data: []byte("AB")}},
	{"session8 readmem", "050c1000371300000c7aa18101000000",
		&kdp.ReadMemRequest{Header: hdr(kdp.ReadMem, false, 12, 16, 0x1337), Address: 0x81a17a0c, NBytes: 1}},
	{"session9 maxbytes reply", "84120c003713000000040000",
		&kdp.MaxBytesReply{Header: hdr(kdp.MaxBytes, true, 0x12, 12, 0x1337), MaxBytes: 1024}},
	{"regions reply", "91 01 18 00 00 00 00 00 01 00 00 00 00 00 00 00 ff ff ff ff 07 00 00 00",
		&kdp.RegionsReply{Header: hdr(kdp.Regions, true, 1, 24, 0), Regions: []kdp.Region{{NBytes: 0xffffffff, Protection: 7}}}},
	{"readphysmem64", "19 02 16 00 00 00 00 00 00 10 00 00 00 00 00 00 08 00 00 00 fe ff",
		&kdp.ReadPhysMem64Request{Header: hdr(kdp.ReadPhysMem64, false, 2, 22, 0), Address: 0x1000, NBytes: 8, LCPU: kdp.CurrentLCPU}},
	{"writephysmem64", "1a 02 17 00 00 00 00 00 00 10 00 00 00 00 00 00 01 00 00 00 fe ff 90",
		&kdp.WritePhysMem64Request{Header: hdr(kdp.WritePhysMem64, false, 2, 23, 0), Address: 0x1000, LCPU: kdp.CurrentLCPU, Data: []byte{0x90}}},
	{"readioport", "1b 03 0e 00 00 00 00 00 fe ff 80 00 01 00",
		&kdp.ReadIOPortRequest{Header: hdr(kdp.ReadIOPort, false, 3, 14, 0), LCPU: kdp.CurrentLCPU, Port: 0x80, NBytes: 1}},
	{"writeioport", "1c 03 10 00 00 00 00 00 fe ff 80 00 02 00 34 12",
		&kdp.WriteIOPortRequest{Header: hdr(kdp.WriteIOPort, false, 3, 16, 0), LCPU: kdp.CurrentLCPU, Port: 0x80, Data: []byte{0x34, 0x12}}},
	{"readmsr64", "1d 04 0e 00 00 00 00 00 80 00 00 c0 fe ff",
		&kdp.ReadMSR64Request{Header: hdr(kdp.ReadMSR64, false, 4, 14, 0), MSR: 0xc0000080, LCPU: kdp.CurrentLCPU}},
	{"readmsr64 reply", "9d 04 14 00 00 00 00 00 00 00 00 00 01 0d 00 00 00 00 00 00",
		&kdp.ReadMSR64Reply{Header: hdr(kdp.ReadMSR64, true, 4, 20, 0), Value: 0xd01}},
	{"writemsr64", "1e 05 16 00 00 00 00 00 80 00 00 c0 fe ff 01 0d 00 00 00 00 00 00",
		&kdp.WriteMSR64Request{Header: hdr(kdp.WriteMSR64, false, 5, 22, 0), MSR: 0xc0000080, LCPU: kdp.CurrentLCPU, Value: 0xd01}},
	{"termination", "0e 00 10 00 00 00 00 00 01 00 00 00 2a 00 00 00",
		&kdp.TerminationNotification{Header: hdr(kdp.Termination, false, 0, 16, 0), TermCode: kdp.TermExit, ExitCode: 42}},
	{"breakpoint set 32", "0f 06 0c 00 00 00 00 00 0c 7a a1 81",
		&kdp.BreakpointSetRequest{Header: hdr(kdp.BreakpointSet, false, 6, 12, 0), Address: 0x81a17a0c}},
	{"load", "09 00 0b 00 00 00 00 00 61 62 00",
		&kdp.LoadRequest{Header: hdr(kdp.Load, false, 0, 11, 0), FileArgs: "ab"}},
}

func TestVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.hex)
			got, err := kdp.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode:\n got %#v\nwant %#v", got, tt.want)
			}
			enc, err := tt.want.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("MarshalBinary:\n got %x\nwant %x", enc, b)
			}
		})
	}
}

// TestEncodeFillsHeader checks that encoding fills Request, Reply and Len and
// keeps Seq and Key, and that TV7's 180-byte register reply is produced.
func TestEncodeFillsHeader(t *testing.T) {
	p := &kdp.ReadRegsReply{Header: kdp.Header{Seq: 5}, State: x86GPR()}
	got, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `87 05 b4 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 40 cc bb aa
      80 ff ff ff 00 cc bb aa 80 ff ff ff 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 35 12 20 00
      80 ff ff ff 46 02 00 00 00 00 00 00 08 00 00 00
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      00 00 00 00`)
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	if h := p.Header; h.Request != kdp.ReadRegs || !h.Reply || h.Len != 180 {
		t.Fatalf("header not filled: %+v", h)
	}
	ack, _ := (&kdp.ExceptionAck{Header: kdp.Header{Seq: 3}}).MarshalBinary()
	if want := unhex(t, "8d 03 08 00 00 00 00 00"); !bytes.Equal(ack, want) {
		t.Fatalf("ack with Len 0: got %x want %x", ack, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", kdp.ErrShortPacket},
		{"7 bytes", "03 01 08 00 00 00 00", kdp.ErrShortPacket},
		{"len larger than datagram", "03 01 09 00 00 00 00 00", kdp.ErrBadLength},
		{"len smaller than datagram", "03 01 08 00 00 00 00 00 00", kdp.ErrBadLength},
		{"readmem64 request too short", "14 04 10 00 00 00 00 00 00 00 20 00 80 ff ff ff", kdp.ErrShortPacket},
		{"hostinfo reply too short", "82 02 10 00 00 00 00 00 0f 00 00 00 07 00 00 01", kdp.ErrShortPacket},
		{"writemem64 nbytes past end", "15 0f 16 00 00 00 00 00 80 3e 00 00 00 c9 ff ff 03 00 00 00 41 42", kdp.ErrShortPacket},
		{"exception count past end", "0d 00 1c 00 00 00 00 00 02 00 00 00 00 00 00 00 06 00 00 00 03 00 00 00 00 00 00 00", kdp.ErrShortPacket},
		{"exception huge count", "0d 00 0c 00 00 00 00 00 ff ff ff ff", kdp.ErrShortPacket},
		{"regions count past end", "91 01 0c 00 00 00 00 00 05 00 00 00", kdp.ErrShortPacket},
		{"dumpinfo short", "1f 00 0c 00 00 00 00 00 61 62 63 00", kdp.ErrShortPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := kdp.Decode(unhex(t, tt.hex))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if p != nil {
				t.Fatalf("Decode returned %#v with an error", p)
			}
		})
	}
}

func TestUnknownRequest(t *testing.T) {
	for _, code := range []byte{32, 0x7f, 0x80 | 40} {
		_, err := kdp.Decode([]byte{code, 0, 8, 0, 0, 0, 0, 0})
		var u kdp.UnknownRequestError
		if !errors.As(err, &u) || kdp.Request(u) != kdp.Request(code&0x7f) {
			t.Errorf("code %#x: err = %v, want UnknownRequestError(%d)", code, err, code&0x7f)
		}
	}
}

func TestWrongPacket(t *testing.T) {
	var p kdp.ReadMem64Reply
	err := p.UnmarshalBinary(unhex(t, "14 04 14 00 00 00 00 00 00 00 20 00 80 ff ff ff 10 00 00 00"))
	if !errors.Is(err, kdp.ErrWrongPacket) {
		t.Fatalf("err = %v, want ErrWrongPacket", err)
	}
}

func TestRegistryCoversEveryRequest(t *testing.T) {
	for r := kdp.Request(0); r < kdp.NumRequests; r++ {
		for _, reply := range []bool{false, true} {
			p, err := kdp.NewPacket(r, reply)
			if err != nil {
				t.Fatalf("NewPacket(%v, %v): %v", r, reply, err)
			}
			if gr, grep := p.Kind(); gr != r || grep != reply {
				t.Fatalf("NewPacket(%v, %v) is a %T of kind (%v, %v)", r, reply, p, gr, grep)
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatalf("%T: MarshalBinary of zero value: %v", p, err)
			}
			q, err := kdp.Decode(b)
			if err != nil {
				t.Fatalf("%T: Decode(%x): %v", p, b, err)
			}
			if reflect.TypeOf(q) != reflect.TypeOf(p) {
				t.Fatalf("Decode(%x) = %T, want %T", b, q, p)
			}
		}
	}
	if _, err := kdp.NewPacket(kdp.NumRequests, false); err == nil {
		t.Fatal("NewPacket(32) succeeded")
	}
}

func TestRequestString(t *testing.T) {
	for _, tt := range []struct {
		r    kdp.Request
		want string
	}{{kdp.Connect, "CONNECT"}, {kdp.ReadMem64, "READMEM64"}, {kdp.DumpInfo, "DUMPINFO"}, {kdp.Breakpoint64Remove, "BREAKPOINT64_REMOVE"}, {40, "Request(40)"}} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", uint8(tt.r), got, tt.want)
		}
	}
}

func TestProtocolError(t *testing.T) {
	var err error = &kdp.ProtocolError{Op: "read 16 bytes at 0x1000", Request: kdp.ReadMem64, Code: kdp.ErrBadAccess}
	if !errors.Is(err, kdp.ErrBadAccess) {
		t.Fatal("errors.Is(ProtocolError, ErrBadAccess) = false")
	}
	if errors.Is(err, kdp.ErrBadNBytes) {
		t.Fatal("errors.Is(ProtocolError{BadAccess}, ErrBadNBytes) = true")
	}
	var pe *kdp.ProtocolError
	if !errors.As(err, &pe) || pe.Request != kdp.ReadMem64 {
		t.Fatal("errors.As failed")
	}
	if got, want := err.Error(), "kdp READMEM64: read 16 bytes at 0x1000: memory not accessible (KDPERR_BAD_ACCESS)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := (&kdp.DumpInfoRequest{Name: strings.Repeat("x", 51)}).MarshalBinary(); !errors.Is(err, kdp.ErrTooLong) {
		t.Errorf("long dumpinfo name: err = %v, want ErrTooLong", err)
	}
	if _, err := (&kdp.WriteMem64Request{Data: make([]byte, 70000)}).MarshalBinary(); !errors.Is(err, kdp.ErrBadLength) {
		t.Errorf("70000-byte write: err = %v, want ErrBadLength", err)
	}
}

func TestParserReuses(t *testing.T) {
	var ps kdp.Parser
	b := unhex(t, "94 04 1c 00 00 00 00 00 00 00 00 00 cf fa ed fe 07 00 00 01 03 00 00 00 02 00 00 00")
	if _, err := ps.Decode(b); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ps.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Parser.Decode allocates %v times per datagram, want 0", allocs)
	}
}

// TestARM64ExceptionPadding decodes arm64 XNU's notification, whose len
// counts its one entry twice (44 bytes, 16 of them stray).
func TestARM64ExceptionPadding(t *testing.T) {
	b := unhex(t, `0d 02 2c 00 00 00 00 00 01 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00 00 00 00 00
		de ad be ef de ad be ef de ad be ef de ad be ef`)
	p, err := kdp.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e := p.(*kdp.ExceptionNotification)
	if e.Seq != 2 || len(e.Info) != 1 || e.Info[0] != (kdp.ExcInfo{Exception: kdp.ExcBreakpoint}) {
		t.Fatalf("decoded %#v", e)
	}
	enc, _ := e.MarshalBinary()
	if len(enc) != 28 {
		t.Fatalf("re-encoded to %d bytes, want 28", len(enc))
	}
}

func TestFlavorSize(t *testing.T) {
	for _, tt := range []struct {
		cpu, flavor uint32
		want        int
		ok          bool
	}{
		{kdp.CPUTypeX86_64, kdp.X86ThreadState64, 168, true},
		{kdp.CPUTypeX86_64, kdp.X86FloatState64, 524, true},
		{kdp.CPUTypeX86_64, kdp.X86ExceptionState64, 16, true},
		{kdp.CPUTypeARM64, kdp.ARMThreadState64, 272, true},
		{kdp.CPUTypeARM64, kdp.ARMVFPState, 260, true},
		{kdp.CPUTypeARM64, kdp.ARMNeonState64, 528, true},
		{kdp.CPUTypeARM64, kdp.ARMDebugState64, 520, true},
		{kdp.CPUTypeARM64, 4, 0, false}, // 4 is x86_THREAD_STATE64, not an arm64 GPR flavor
		{kdp.CPUTypeX86, 4, 0, false},
	} {
		got, ok := kdp.FlavorSize(tt.cpu, tt.flavor)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FlavorSize(%#x, %d) = %d, %v; want %d, %v", tt.cpu, tt.flavor, got, ok, tt.want, tt.ok)
		}
	}
	if f, ok := kdp.GeneralFlavor(kdp.CPUTypeARM64); !ok || f != kdp.ARMThreadState64 {
		t.Errorf("GeneralFlavor(arm64) = %d, %v", f, ok)
	}
}
