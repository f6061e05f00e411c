package kdp_test

import (
	"fmt"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

func ExampleDecode() {
	// LLDB's READMEM64 of 8 bytes at 0xfffffff000002010 (key 0x1337, seq 4).
	b := []byte{0x14, 0x04, 0x14, 0x00, 0x37, 0x13, 0x00, 0x00,
		0x10, 0x20, 0x00, 0x00, 0xf0, 0xff, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00}
	p, err := kdp.Decode(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch p := p.(type) {
	case *kdp.ReadMem64Request:
		fmt.Printf("%v: %d bytes at %#x\n", &p.Header, p.NBytes, p.Address)
	}
	// Output: READMEM64 request seq=4 len=20 key=0x1337: 8 bytes at 0xfffffff000002010
}

func ExampleReadMem64Reply_MarshalBinary() {
	// A stub's answer to the request above: nothing readable there.
	req := kdp.Header{Request: kdp.ReadMem64, Seq: 4, Key: 0x1337}
	reply := &kdp.ReadMem64Reply{Header: req.ReplyHeader(), Error: kdp.ErrBadAccess}
	b, _ := reply.MarshalBinary()
	fmt.Printf("% x\n", b)
	// Output: 94 04 0c 00 37 13 00 00 04 00 00 00
}
