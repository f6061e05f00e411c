package cli

import (
	"bytes"
	"strings"
	"testing"
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
