package kdpbridge

import (
	"context"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// benchClient serves b on loopback and connects a client to it.
func benchClient(b *testing.B, be tracer.Backend) *Client {
	b.Helper()
	srv, _ := startServer(b, be, ServerOptions{})
	c, err := Connect(context.Background(), srv.String(), fastClient)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkServerReadRegs measures one READREGS round trip on loopback
// (client, server, a fake process).
func BenchmarkServerReadRegs(b *testing.B) {
	c := benchClient(b, fakeWaiter{newLLDBFake()})
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.ReadRegs(ctx, LLDBThreadCPU, kdp.X86ThreadState64); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerReadMem512 measures one 512-byte READMEM64 round trip, the
// chunk LLDB reads.
func BenchmarkServerReadMem512(b *testing.B) {
	c := benchClient(b, fakeWaiter{newLLDBFake()})
	ctx := context.Background()
	buf := make([]byte, 512)
	b.SetBytes(512)
	for b.Loop() {
		if _, err := c.ReadMem(ctx, 0xffffffff81a17a00, buf); err != nil {
			b.Fatal(err)
		}
	}
}
