package kdp_test

import (
	"bytes"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
)

// TestReplayLLDB decodes every datagram of the LLDB transcripts. The L>S
// datagrams are LLDB's own bytes: every one must decode, to the request the
// capture named, and re-encode to the same bytes. The S>L replies come from a
// throwaway stub; they must decode too.
func TestReplayLLDB(t *testing.T) {
	var n, fromLLDB int
	for _, tr := range kdptest.Transcripts(t) {
		t.Run(tr.Name, func(t *testing.T) {
			for _, d := range tr.Datagrams {
				p, err := kdp.Decode(d.Bytes)
				if err != nil {
					t.Errorf("line %d %s %x: %v", d.Line, d.Name, d.Bytes, err)
					continue
				}
				n++
				req, reply := p.Kind()
				name := req.String()
				if reply {
					name = "reply_" + name
				} else if !d.FromLLDB {
					name = "request_" + name // a notification from the stub
				}
				if d.Name != name {
					t.Errorf("line %d: decoded as %s (%T), capture says %s", d.Line, name, p, d.Name)
				}
				enc, err := p.MarshalBinary()
				if err != nil {
					t.Errorf("line %d %s: re-encode: %v", d.Line, d.Name, err)
					continue
				}
				if !bytes.Equal(enc, d.Bytes) {
					t.Errorf("line %d %s: re-encoded\n got %x\nwant %x", d.Line, d.Name, enc, d.Bytes)
				}
				if d.FromLLDB {
					fromLLDB++
				}
			}
		})
	}
	t.Logf("decoded %d datagrams, %d of them from LLDB", n, fromLLDB)
}
