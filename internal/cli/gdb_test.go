package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machtrace/machtrace/internal/testvm"
	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// runCLI runs one machtrace command line against the real target opener.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Open: openTarget}
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestGDBTargetCLI runs the commands against the test VM's QEMU stub through
// --target gdb://, with the VM's kallsyms and KASLR on.
func TestGDBTargetCLI(t *testing.T) {
	vm := testvm.Shared(t)
	tgt := "--target=gdb://" + vm.GDBAddr
	ks := "--kallsyms=" + vm.Kallsyms()
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(t, ctx, args...)
		if err != nil {
			t.Fatalf("machtrace %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
		}
		t.Logf("machtrace %s:\n%s%s", strings.Join(args, " "), out, errOut)
		return out + errOut
	}
	checkRunning := func(after string) {
		t.Helper()
		if st, err := vm.Status(); st != "running" {
			t.Errorf("after %s: VM %q (%v), want running", after, st, err)
		}
	}

	out := run("threads", tgt, ks)
	if !strings.Contains(out, "CPU#0") || !strings.Contains(out, "CPU#1") || !strings.Contains(out, "KASLR slide 0x") {
		t.Errorf("threads: want both vCPUs and the KASLR slide")
	}
	checkRunning("threads")

	out = run("regs", tgt, ks, "--system")
	for _, want := range []string{"thread 1", "thread 2", "rip", "rsp", "cr3", "efer"} {
		if !strings.Contains(out, want) {
			t.Errorf("regs: no %q", want)
		}
	}
	checkRunning("regs")

	out = run("mem", tgt, ks, "linux_banner", "64")
	if !strings.Contains(out, "|Linux version") {
		t.Errorf("mem linux_banner: no \"Linux version\"")
	}

	out = run("disasm", tgt, ks, "--tid", "1", "-n", "4")
	if !strings.Contains(out, "=>") {
		t.Errorf("disasm: no PC marker")
	}

	out = run("setreg", tgt, "--tid", "2", "xmm15=0x0102030405060708090a0b0c0d0e0f10", "--write")
	if !strings.Contains(out, "0102030405060708090a0b0c0d0e0f10") {
		t.Errorf("setreg: value not confirmed")
	}
	checkRunning("setreg")

	out = run("sample", tgt, ks, "-F", "200", "-d", "2s", "--no-unwind")
	if !strings.Contains(out, "[kernel.kallsyms]") {
		t.Errorf("sample: no kernel symbol in the table")
	}
	if m := regexp.MustCompile(`stopped ([0-9.]+)% of the time`).FindStringSubmatch(out); m == nil {
		t.Errorf("sample: no stopped share reported")
	} else {
		s, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("guest share of wall time while sampling: %.1f%%", 100-s)
	}
	checkRunning("sample")
}

// TestGDBTargetKDPServe runs `kdp serve --target gdb://...` and reads the
// registers through machtrace's KDP client.
func TestGDBTargetKDPServe(t *testing.T) {
	vm := testvm.Shared(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The serve command itself, whether or not the root lists `kdp`.
		var out, errOut bytes.Buffer
		f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Open: openTarget}
		cmd := NewCmdKDPServe(f, nil)
		cmd.SetArgs([]string{"--target=gdb://" + vm.GDBAddr, "--listen", addr})
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		done <- cmd.ExecuteContext(ctx)
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	var cl *kdpbridge.Client
	for i := 0; ; i++ {
		cl, err = kdpbridge.Connect(cctx, addr, kdpbridge.ClientOptions{Timeout: 500 * time.Millisecond, Tries: 2})
		if err == nil || i == 20 {
			break
		}
	}
	if err != nil {
		cancel()
		t.Fatalf("kdp connect: %v (serve: %v)", err, <-done)
	}
	img, err := cl.ReadRegs(cctx, 0, kdp.X86ThreadState64)
	if err != nil {
		t.Fatal(err)
	}
	rip := binary.LittleEndian.Uint64(img[16*8:])
	t.Logf("rip through kdp serve: %#x", rip)
	if rip == 0 {
		t.Errorf("rip through kdp serve is 0")
	}
	cl.Disconnect(cctx)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("kdp serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("kdp serve did not return 20 s after cancellation")
	}
	if st, err := vm.Status(); st != "running" {
		t.Errorf("after kdp serve: VM %q (%v), want running", st, err)
	}
}
