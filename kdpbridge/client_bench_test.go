package kdpbridge_test

import (
	"context"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// BenchmarkClientReadMem reads 4 KiB (8 READMEM64 round trips of 512 bytes)
// from the fake peer over loopback.
func BenchmarkClientReadMem(b *testing.B) {
	ctx := context.Background()
	_, srv := newTarget(b)
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), steady)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadMem(ctx, textBase, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientReadRegs is one READREGS round trip of the x86_64 GPRs.
func BenchmarkClientReadRegs(b *testing.B) {
	ctx := context.Background()
	_, srv := newTarget(b)
	c, err := kdpbridge.Connect(ctx, srv.Addr().String(), steady)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadRegs(ctx, kdpbridge.LLDBThreadCPU, kdp.X86ThreadState64); err != nil {
			b.Fatal(err)
		}
	}
}
