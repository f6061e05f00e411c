package gdbremote

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testvm"
)

var update = flag.Bool("update", false, "rewrite testdata/qemu-7.2 from the test VM's stub")

// TestQEMUTargetXMLGolden compares the target description the test VM's
// QEMU serves with the copy in testdata (which TestTargetDescriptionQEMU
// parses offline); -update rewrites the copy.
func TestQEMUTargetXMLGolden(t *testing.T) {
	vm := testvm.Shared(t)
	cl, err := Dial(vm.GDBAddr, &Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Detach()
	for _, name := range []string{"target.xml", "i386-64bit.xml"} {
		doc, err := cl.readFeature(name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "qemu-7.2", name)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(doc, want) {
			t.Errorf("%s from QEMU (%d bytes) differs from %s (%d bytes): a different QEMU? rerun with -update", name, len(doc), path, len(want))
		}
	}
}
