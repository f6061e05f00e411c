package darwin

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDebugFlags(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want DebugFlags
	}{
		{"hex", "0x144", DBNMI | DBARP | DBLogPIScrn},
		{"with key", "debug=0x144", 0x144},
		{"decimal", "324", 0x144},
		{"octal", "0144", 0144},
		{"names", "DB_NMI|DB_ARP|DB_LOG_PI_SCRN", 0x144},
		{"short lower names", "nmi,arp", DBNMI | DBARP},
		{"mixed", "halt+0x8", DBHalt | DBKPrt},
		{"kdp bp dis", "DB_KDP_BP_DIS", 0x80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDebugFlags(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("ParseDebugFlags(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDebugFlagsErrors(t *testing.T) {
	for _, in := range []string{"", "DB_NOPE", "0x1zz", "debug="} {
		_, err := ParseDebugFlags(in)
		if !errors.Is(err, ErrBadDebugFlags) {
			t.Errorf("ParseDebugFlags(%q) error = %v, want ErrBadDebugFlags", in, err)
		}
	}
}

// TestDebugFlagValues pins the table to osfmk/kern/debug.h. Seed 000's table
// is wrong for several of these (it gives DB_ARP 0x20 and DB_KDP_BP_DIS 0x08).
func TestDebugFlagValues(t *testing.T) {
	want := map[string]DebugFlags{
		"DB_HALT": 0x1, "DB_PRT": 0x2, "DB_NMI": 0x4, "DB_KPRT": 0x8, "DB_KDB": 0x10,
		"DB_SLOG": 0x20, "DB_ARP": 0x40, "DB_KDP_BP_DIS": 0x80, "DB_LOG_PI_SCRN": 0x100,
		"DB_KDP_GETC_ENA": 0x200, "DB_KERN_DUMP_ON_PANIC": 0x400, "DB_KERN_DUMP_ON_NMI": 0x800,
		"DB_DBG_POST_CORE": 0x1000, "DB_PANICLOG_DUMP": 0x2000, "DB_REBOOT_POST_CORE": 0x4000,
		"DB_NMI_BTN_ENA": 0x8000, "DB_PRT_KDEBUG": 0x10000, "DB_DISABLE_LOCAL_CORE": 0x20000,
		"DB_DISABLE_GZIP_CORE": 0x40000, "DB_DISABLE_CROSS_PANIC": 0x80000,
		"DB_REBOOT_ALWAYS": 0x100000, "DB_DISABLE_STACKSHOT_TO_DISK": 0x200000,
		"DB_DEBUG_IP_INIT": 0x400000, "DB_SOC_HALT_ENABLE": 0x800000,
	}
	all := AllDebugFlags()
	if len(all) != len(want) {
		t.Fatalf("table has %d flags, want %d", len(all), len(want))
	}
	for i, d := range all {
		if w, ok := want[d.Name]; !ok || w != d.Flag {
			t.Errorf("%s = %s, want %s", d.Name, d.Flag, w)
		}
		if i > 0 && all[i-1].Flag >= d.Flag {
			t.Errorf("table not ascending at %s", d.Name)
		}
		if d.Meaning == "" {
			t.Errorf("%s has no explanation", d.Name)
		}
	}
}

func TestDebugFlagsNamesAndObsolete(t *testing.T) {
	f := DebugFlags(0x144)
	if got, want := f.Names(), "DB_NMI|DB_ARP|DB_LOG_PI_SCRN"; got != want {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := f.Obsolete(); got != DBLogPIScrn {
		t.Errorf("Obsolete() = %s, want DB_LOG_PI_SCRN", got)
	}
	if got := (DBPrt | DBSlog | DBPrtKdebug | DBHalt).Obsolete(); got != DBPrt|DBSlog|DBPrtKdebug {
		t.Errorf("Obsolete() = %s", got)
	}
	odd := DebugFlags(0x80000004)
	if got, want := odd.Names(), "DB_NMI|0x80000000"; got != want {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	ex := odd.Explain()
	if len(ex) != 2 || ex[1].Name != "" || ex[1].Flag != 0x80000000 {
		t.Errorf("Explain() = %+v", ex)
	}
	if DebugFlags(0).Names() != "0" {
		t.Errorf("zero names")
	}
	// Round trip: names back to the same value.
	for v := DebugFlags(1); v != 0 && v <= 0x800000; v <<= 1 {
		got, err := ParseDebugFlags(v.Names())
		if err != nil || got != v {
			t.Errorf("round trip %s: %s, %v", v, got, err)
		}
	}
}

func TestBootArgs(t *testing.T) {
	b, err := ParseBootArgs("-v debug=0x144 keepsyms=1")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Verbose || !b.HasDebug || b.Debug != 0x144 || len(b.Other) != 1 {
		t.Fatalf("ParseBootArgs = %+v", b)
	}
	if got, want := b.String(), "-v debug=0x144 keepsyms=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := b.NVRAMCommand(), "sudo nvram boot-args='-v debug=0x144 keepsyms=1'"; got != want {
		t.Errorf("NVRAMCommand() = %q, want %q", got, want)
	}
	if !strings.Contains(b.BootPlistSnippet(), "<string>-v debug=0x144 keepsyms=1</string>") {
		t.Errorf("BootPlistSnippet() = %q", b.BootPlistSnippet())
	}
	if _, err := ParseBootArgs("debug=bogus"); !errors.Is(err, ErrBadDebugFlags) {
		t.Errorf("bad debug= error = %v", err)
	}
}

func TestStaticARP(t *testing.T) {
	e, err := ParseStaticARP("192.168.203.2", "0:50:56:f6:cc:a8")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Command(), "sudo arp -s 192.168.203.2 00:50:56:f6:cc:a8"; got != want {
		t.Errorf("Command() = %q, want %q", got, want)
	}
	p := e.LaunchdPlist("")
	for _, s := range []string{
		"<string>" + DefaultLaunchdLabel + "</string>",
		"<string>/usr/sbin/arp</string>",
		"<string>-s</string>",
		"<string>192.168.203.2</string>",
		"<string>00:50:56:f6:cc:a8</string>",
		"<key>RunAtLoad</key>\n\t<true/>",
	} {
		if !strings.Contains(p, s) {
			t.Errorf("plist lacks %q:\n%s", s, p)
		}
	}
	if got := LaunchdPath("x.y"); got != "/Library/LaunchDaemons/x.y.plist" {
		t.Errorf("LaunchdPath = %q", got)
	}
	for _, bad := range [][2]string{{"::1", "00:11:22:33:44:55"}, {"1.2.3.4", "zz"}, {"nope", "00:11:22:33:44:55"}, {"1.2.3.4", "00:11:22:33:44:55:66:77"}} {
		if _, err := ParseStaticARP(bad[0], bad[1]); err == nil {
			t.Errorf("ParseStaticARP(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}
