package kdp_test

import (
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

func BenchmarkParserDecodeReadMem64Reply(b *testing.B) {
	reply := &kdp.ReadMem64Reply{Header: kdp.Header{Seq: 9, Key: 0x1337}, Data: make([]byte, 512)}
	d, err := reply.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	var ps kdp.Parser
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ps.Decode(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReadRegsReply(b *testing.B) {
	reply := &kdp.ReadRegsReply{Header: kdp.Header{Seq: 9}, State: make([]byte, kdp.X86ThreadState64Size)}
	d, _ := reply.MarshalBinary()
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kdp.Decode(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendReadMem64Request(b *testing.B) {
	req := &kdp.ReadMem64Request{Address: 0xffffff8000200000, NBytes: 512}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		req.Seq++
		var err error
		if buf, err = req.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
