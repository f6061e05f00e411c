package gdbremote

import (
	"net"
	"os"
	"testing"
	"time"
)

// FuzzStream feeds arbitrary stub output to the packet reader: it must
// return packets or an error, never panic or hang.
func FuzzStream(f *testing.F) {
	f.Add([]byte("+$T02thread:01;#04"))
	f.Add([]byte("$OK#9a"))
	f.Add([]byte("$0*\"#00$}]#00%Stop:T05#00"))
	f.Add([]byte("-+$E14#aa"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() {
			b.Write(stream)
			// drain acks and naks
			buf := make([]byte, 64)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}()
		c := newConn(a, "fuzz", 50*time.Millisecond, nil)
		for i := 0; i < 8; i++ {
			p, err := c.recv("fuzz", true)
			if err != nil {
				return
			}
			parseStop(p)
			replyError("fuzz", p)
		}
	})
}

// FuzzTargetDescription parses arbitrary target.xml documents.
func FuzzTargetDescription(f *testing.F) {
	for _, n := range []string{"target.xml", "i386-64bit.xml"} {
		b, err := os.ReadFile("testdata/qemu-7.2/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(fakeXML))
	f.Fuzz(func(t *testing.T, doc []byte) {
		td, err := parseTargetDescription(func(name string) ([]byte, error) {
			if name == "target.xml" {
				return doc, nil
			}
			return []byte(fakeCore), nil
		})
		if (td == nil) == (err == nil) {
			t.Fatalf("td %v, err %v", td, err)
		}
		if td != nil {
			off := 0
			for _, r := range td.Regs {
				if r.Offset != off || r.Bits <= 0 {
					t.Fatalf("register %+v at offset %d", r, off)
				}
				off += r.Size()
			}
			if off != td.GSize {
				t.Fatalf("g size %d, registers end at %d", td.GSize, off)
			}
		}
	})
}
