package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/kdpbridge/kdptest"
	"github.com/machtrace/machtrace/tracer"
)

func testFactory() (*Factory, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := new(bytes.Buffer), new(bytes.Buffer)
	return &Factory{IO: IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}}, out, errOut
}

func TestKDPBootargs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{
			name: "default",
			args: nil,
			want: []string{
				"boot-args: -v debug=0x144",
				"0x4    DB_NMI",
				"0x40   DB_ARP",
				"0x100  DB_LOG_PI_SCRN",
				"[obsolete:",
				"sudo nvram boot-args='-v debug=0x144'",
				"<key>Kernel Flags</key>",
			},
		},
		{
			name: "names and arp",
			args: []string{"DB_HALT|DB_ARP", "--extra", "keepsyms=1", "--host-ip", "192.168.203.2", "--host-mac", "0:50:56:f6:cc:a8",
				"--target-ip", "192.168.203.128", "--target-mac", "00:0c:29:aa:bb:cc"},
			want: []string{
				"boot-args: -v debug=0x41 keepsyms=1",
				"sudo arp -s 192.168.203.2 00:50:56:f6:cc:a8",
				"<string>192.168.203.2</string>",
				"/Library/LaunchDaemons/com.machtrace.kdp.static-arp.plist",
				"sudo arp -s 192.168.203.128 00:0c:29:aa:bb:cc",
				"kdp-remote 192.168.203.128",
			},
		},
		{name: "list", args: []string{"--list"}, want: []string{"DB_KDP_BP_DIS", "0x80", "DB_REBOOT_ALWAYS"}},
		{name: "bad flags", args: []string{"DB_BOGUS"}, wantErr: "DB_BOGUS"},
		{name: "ip without mac", args: []string{"--host-ip", "1.2.3.4"}, wantErr: "go together"},
		{name: "bad mac", args: []string{"--host-ip", "1.2.3.4", "--host-mac", "nope"}, wantErr: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, _ := testFactory()
			cmd := NewCmdKDPBootargs(f, nil)
			cmd.SetArgs(tt.args)
			cmd.SetOut(out)
			cmd.SetErr(out)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestKDPServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*testing.T, *KDPServeOptions)
		wantErr string
	}{
		{name: "pid", args: []string{"-p", "42"}, check: func(t *testing.T, o *KDPServeOptions) {
			if o.Target.PID != 42 || o.Listen != "127.0.0.1:41139" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "launch", args: []string{"--listen", "0.0.0.0:5000", "--", "/bin/true", "x"}, check: func(t *testing.T, o *KDPServeOptions) {
			if len(o.Target.Argv) != 2 || o.Listen != "0.0.0.0:5000" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "gdb target", args: []string{"--target", "gdb://127.0.0.1:1234"}, check: func(t *testing.T, o *KDPServeOptions) {
			if o.Target.URL != "gdb://127.0.0.1:1234" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "no target", args: nil, wantErr: "no target"},
		{name: "bad listen", args: []string{"-p", "1", "--listen", "nope"}, wantErr: "--listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, _ := testFactory()
			var got *KDPServeOptions
			cmd := NewCmdKDPServe(f, func(o *KDPServeOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(out)
			cmd.SetErr(out)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

// kdpFactory opens every --target with openKDP.
func kdpFactory() (*Factory, *bytes.Buffer, *bytes.Buffer) {
	f, out, errOut := testFactory()
	f.Open = func(o *TargetOptions) (*Session, error) {
		u, err := url.Parse(o.URL)
		if err != nil {
			return nil, err
		}
		return openKDP(o, u)
	}
	return f, out, errOut
}

// TestKDPTargetCommands runs threads, regs, mem, disasm, setreg --write and
// sample against a fake halted XNU x86_64 kernel through --target kdp://.
func TestKDPTargetCommands(t *testing.T) {
	const pc = 0xffffff8000201234
	tgt := kdptest.NewTarget()
	code := []byte{0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0x90, 0xc3}
	tgt.Map(pc, append(code, make([]byte, 0x200)...))
	img := make([]byte, kdp.X86ThreadState64Size)
	binary.LittleEndian.PutUint64(img[0:], 0x1234)              // rax
	binary.LittleEndian.PutUint64(img[56:], 0xffffff80aabbcc00) // rsp
	binary.LittleEndian.PutUint64(img[128:], pc)                // rip
	binary.LittleEndian.PutUint64(img[136:], 0x246)             // rflags
	tgt.SetRegs(kdp.X86ThreadState64, img)
	peer := kdptest.NewServer(t, tgt.Handle)
	target := "kdp://" + peer.Addr().String() + "?timeout=500ms&halted=1"

	run := func(args ...string) (string, error) {
		t.Helper()
		f, out, errOut := kdpFactory()
		root := NewCmdRoot(f)
		root.SetArgs(append(args, "--target", target))
		err := root.ExecuteContext(context.Background())
		t.Logf("machtrace %s:\n%s%s", strings.Join(args, " "), out, errOut)
		return out.String() + errOut.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("machtrace %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	if out := mustRun("threads"); !strings.Contains(out, "cpu0") {
		t.Errorf("threads: no cpu0")
	}
	if out := mustRun("regs"); !strings.Contains(out, "0xffffff8000201234") || !strings.Contains(out, "0000000000001234") {
		t.Errorf("regs: rip or rax missing")
	}
	if out := mustRun("mem", "0xffffff8000201234", "8"); !strings.Contains(out, "55 48 89 e5") {
		t.Errorf("mem: code bytes missing")
	}
	if out := mustRun("disasm", "-n", "3"); !strings.Contains(strings.ToLower(out), "push") {
		t.Errorf("disasm: no push at the pc")
	}
	mustRun("setreg", "--tid", "1", "rax=0x99", "--write")
	if got := binary.LittleEndian.Uint64(tgt.Regs(kdp.X86ThreadState64)[0:]); got != 0x99 {
		t.Errorf("setreg --write: rax = %#x in the kernel", got)
	}
	// Sampling by suspension cannot work on KDP (the sampler resumes the
	// kernel, then cannot stop it): the error must say so.
	if out, err := run("sample", "-d", "1s"); err == nil || !errors.Is(err, tracer.ErrCannotHalt) || !strings.Contains(err.Error(), "kdp sample --trigger") {
		t.Errorf("sample over KDP: %v\n%s", err, out)
	}
}
