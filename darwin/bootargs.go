package darwin

// This file is the portable part of package darwin: it builds on every OS and
// needs no cgo. It composes and explains XNU's `debug=` boot-arg and the
// host-side setup two-machine KDP debugging needs (nvram, static ARP, a
// launchd job that re-creates the ARP entry at boot).

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DebugFlags is the value of XNU's `debug=` boot-arg: a set of the DB_* bits
// declared in osfmk/kern/debug.h.
type DebugFlags uint32

// The DB_* bits, with XNU's names. Values are from osfmk/kern/debug.h
// (apple-oss-distributions/xnu, xnu-11417 era; apple/darwin-xnu for the older
// names). See DebugFlagInfo for what each one does and which are obsolete.
const (
	DBHalt                   DebugFlags = 0x1      // DB_HALT
	DBPrt                    DebugFlags = 0x2      // DB_PRT (obsolete)
	DBNMI                    DebugFlags = 0x4      // DB_NMI
	DBKPrt                   DebugFlags = 0x8      // DB_KPRT
	DBKDB                    DebugFlags = 0x10     // DB_KDB
	DBSlog                   DebugFlags = 0x20     // DB_SLOG (obsolete)
	DBARP                    DebugFlags = 0x40     // DB_ARP
	DBKDPBPDis               DebugFlags = 0x80     // DB_KDP_BP_DIS
	DBLogPIScrn              DebugFlags = 0x100    // DB_LOG_PI_SCRN (obsolete)
	DBKDPGetcEna             DebugFlags = 0x200    // DB_KDP_GETC_ENA
	DBKernDumpOnPanic        DebugFlags = 0x400    // DB_KERN_DUMP_ON_PANIC
	DBKernDumpOnNMI          DebugFlags = 0x800    // DB_KERN_DUMP_ON_NMI
	DBDbgPostCore            DebugFlags = 0x1000   // DB_DBG_POST_CORE
	DBPaniclogDump           DebugFlags = 0x2000   // DB_PANICLOG_DUMP
	DBRebootPostCore         DebugFlags = 0x4000   // DB_REBOOT_POST_CORE
	DBNMIBtnEna              DebugFlags = 0x8000   // DB_NMI_BTN_ENA
	DBPrtKdebug              DebugFlags = 0x10000  // DB_PRT_KDEBUG (obsolete)
	DBDisableLocalCore       DebugFlags = 0x20000  // DB_DISABLE_LOCAL_CORE
	DBDisableGzipCore        DebugFlags = 0x40000  // DB_DISABLE_GZIP_CORE
	DBDisableCrossPanic      DebugFlags = 0x80000  // DB_DISABLE_CROSS_PANIC
	DBRebootAlways           DebugFlags = 0x100000 // DB_REBOOT_ALWAYS
	DBDisableStackshotToDisk DebugFlags = 0x200000 // DB_DISABLE_STACKSHOT_TO_DISK
	DBDebugIPInit            DebugFlags = 0x400000 // DB_DEBUG_IP_INIT
	DBSoCHaltEnable          DebugFlags = 0x800000 // DB_SOC_HALT_ENABLE
)

// DebugFlagInfo describes one DB_* bit.
type DebugFlagInfo struct {
	Flag    DebugFlags
	Name    string // XNU's macro name, e.g. "DB_NMI"
	Meaning string // one line, what the kernel does when the bit is set
	// Obsolete is empty for a bit current XNU still acts on; otherwise it
	// says since when and why the bit does nothing.
	Obsolete string
}

// debugFlagTable lists every known bit in ascending order.
var debugFlagTable = []DebugFlagInfo{
	{DBHalt, "DB_HALT", "halt at boot and wait for a debugger to connect", ""},
	{DBPrt, "DB_PRT", "send kernel printf output to the console", "commented out as obsolete in osfmk/kern/debug.h since xnu-7195 (macOS 11); printf goes to the console anyway with -v"},
	{DBNMI, "DB_NMI", "drop into the debugger on NMI (Command-Option-Control-Shift-Esc, Command-Power, or a pseudo-NMI kext) instead of panicking", ""},
	{DBKPrt, "DB_KPRT", "send kprintf output to the serial port", ""},
	{DBKDB, "DB_KDB", "use the in-kernel kdb/ddb debugger instead of KDP (kdb is not built into shipping kernels; leave it off)", ""},
	{DBSlog, "DB_SLOG", "log system events (diagnostic logging)", "removed from osfmk/kern/debug.h by xnu-7195 (macOS 11)"},
	{DBARP, "DB_ARP", "let the KDP stub answer ARP requests for its own IP, so the debugger host needs no static ARP entry for the target", ""},
	{DBKDPBPDis, "DB_KDP_BP_DIS", "tell the debugger the stub does not manage breakpoints (KDP VERSION feature bit 0 cleared; old gdb compatibility)", ""},
	{DBLogPIScrn, "DB_LOG_PI_SCRN", "show the panic log as text instead of the graphical panic screen", "commented out as obsolete in osfmk/kern/debug.h since xnu-7195 (macOS 11)"},
	{DBKDPGetcEna, "DB_KDP_GETC_ENA", "let the KDP stub read characters from the console (kdp_getc)", ""},
	{DBKernDumpOnPanic, "DB_KERN_DUMP_ON_PANIC", "send a kernel core dump on panic (see _panicd_ip)", ""},
	{DBKernDumpOnNMI, "DB_KERN_DUMP_ON_NMI", "send a kernel core dump on NMI", ""},
	{DBDbgPostCore, "DB_DBG_POST_CORE", "wait in the debugger after an NMI-triggered core dump", ""},
	{DBPaniclogDump, "DB_PANICLOG_DUMP", "send only the panic log on panic, not a full core", ""},
	{DBRebootPostCore, "DB_REBOOT_POST_CORE", "reboot after the post-panic core dump or panic log", ""},
	{DBNMIBtnEna, "DB_NMI_BTN_ENA", "let the power button trigger an NMI directly", ""},
	{DBPrtKdebug, "DB_PRT_KDEBUG", "kprintf kdebug trace events", "feature removed; xnu-7195 (macOS 11) and later keep only a comment for 0x10000"},
	{DBDisableLocalCore, "DB_DISABLE_LOCAL_CORE", "do not write a local kernel core dump", ""},
	{DBDisableGzipCore, "DB_DISABLE_GZIP_CORE", "do not gzip kernel core dumps", ""},
	{DBDisableCrossPanic, "DB_DISABLE_CROSS_PANIC", "x86 only: do not trigger cross panics with a T2/bridgeOS co-processor (needed to debug such Macs)", ""},
	{DBRebootAlways, "DB_REBOOT_ALWAYS", "on panic, reboot instead of waiting for a debugger connection", ""},
	{DBDisableStackshotToDisk, "DB_DISABLE_STACKSHOT_TO_DISK", "do not write the panic stackshot to local disk", ""},
	{DBDebugIPInit, "DB_DEBUG_IP_INIT", "iBoot only: enable debug IPs during init", ""},
	{DBSoCHaltEnable, "DB_SOC_HALT_ENABLE", "iBoot only: enable SoC halt during init", ""},
}

// AllDebugFlags returns a description of every known DB_* bit in ascending
// order. The slice is a copy.
func AllDebugFlags() []DebugFlagInfo { return append([]DebugFlagInfo(nil), debugFlagTable...) }

// Info describes a single bit. ok is false when f is not exactly one known
// bit.
func (f DebugFlags) Info() (info DebugFlagInfo, ok bool) {
	for _, d := range debugFlagTable {
		if d.Flag == f {
			return d, true
		}
	}
	return DebugFlagInfo{Flag: f}, false
}

// Known is the union of every bit in the table.
func knownDebugFlags() DebugFlags {
	var all DebugFlags
	for _, d := range debugFlagTable {
		all |= d.Flag
	}
	return all
}

// Unknown returns the bits of f that XNU does not define.
func (f DebugFlags) Unknown() DebugFlags { return f &^ knownDebugFlags() }

// Obsolete returns the bits of f that current XNU ignores.
func (f DebugFlags) Obsolete() DebugFlags {
	var o DebugFlags
	for _, d := range debugFlagTable {
		if f&d.Flag != 0 && d.Obsolete != "" {
			o |= d.Flag
		}
	}
	return o
}

// Explain returns one entry per set bit, in ascending order. Bits XNU does
// not define get an entry with an empty Name.
func (f DebugFlags) Explain() []DebugFlagInfo {
	var out []DebugFlagInfo
	for v := uint32(f); v != 0; v &= v - 1 {
		bit := DebugFlags(1) << bits.TrailingZeros32(v)
		info, ok := bit.Info()
		if !ok {
			info.Meaning = "not defined by XNU"
		}
		out = append(out, info)
	}
	return out
}

// String returns the value in hex, as the boot-arg is usually written
// ("0x144").
func (f DebugFlags) String() string { return "0x" + strconv.FormatUint(uint64(f), 16) }

// Names returns the set bits as "DB_NMI|DB_ARP|DB_LOG_PI_SCRN"; unknown bits
// are appended in hex. Zero is "0".
func (f DebugFlags) Names() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, info := range f.Explain() {
		if info.Name != "" {
			parts = append(parts, info.Name)
		}
	}
	if u := f.Unknown(); u != 0 {
		parts = append(parts, u.String())
	}
	return strings.Join(parts, "|")
}

// ErrBadDebugFlags is returned (wrapped) by ParseDebugFlags.
var ErrBadDebugFlags = errors.New("bad debug= value")

// ParseDebugFlags parses a debug= value. It accepts a number as XNU's
// PE_parse_boot_argn does (hex with 0x, octal with a leading 0, decimal), or
// flag names joined by '|', ',' or '+' ("DB_NMI|DB_ARP", "nmi,arp"), where the
// DB_ prefix and case are optional and numbers may be mixed in.
func ParseDebugFlags(s string) (DebugFlags, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "debug=")
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadDebugFlags)
	}
	var f DebugFlags
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' || r == '+' }) {
		tok = strings.TrimSpace(tok)
		if n, err := strconv.ParseUint(tok, 0, 32); err == nil {
			f |= DebugFlags(n)
			continue
		}
		name := strings.ToUpper(tok)
		if !strings.HasPrefix(name, "DB_") {
			name = "DB_" + name
		}
		found := false
		for _, d := range debugFlagTable {
			if d.Name == name {
				f |= d.Flag
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: %q is neither a number nor a DB_* flag name (see `machtrace kdp bootargs --list`)", ErrBadDebugFlags, tok)
		}
	}
	return f, nil
}

// RecommendedDebugFlags is the classic two-machine KDP setting from Apple's
// kernel debugging documentation: break into the debugger on NMI, answer ARP,
// and show a text panic log (0x144). On macOS 11 and later DB_LOG_PI_SCRN is
// ignored, which is harmless.
const RecommendedDebugFlags = DBNMI | DBARP | DBLogPIScrn

// BootArgs is a boot-args string split into the parts machtrace cares about.
type BootArgs struct {
	Verbose  bool       // -v: verbose boot, and the console shows panics
	Debug    DebugFlags // debug=
	HasDebug bool       // whether debug= was present
	Other    []string   // every other argument, in order
}

// ParseBootArgs splits a boot-args string ("-v debug=0x144 keepsyms=1").
func ParseBootArgs(s string) (BootArgs, error) {
	var b BootArgs
	for _, a := range strings.Fields(s) {
		switch {
		case a == "-v":
			b.Verbose = true
		case strings.HasPrefix(a, "debug="):
			f, err := ParseDebugFlags(a)
			if err != nil {
				return BootArgs{}, fmt.Errorf("boot-args %q: %w", s, err)
			}
			b.Debug, b.HasDebug = f, true
		default:
			b.Other = append(b.Other, a)
		}
	}
	return b, nil
}

// String formats the boot-args: "-v debug=0x144" followed by the other
// arguments.
func (b BootArgs) String() string {
	var parts []string
	if b.Verbose {
		parts = append(parts, "-v")
	}
	if b.HasDebug {
		parts = append(parts, "debug="+b.Debug.String())
	}
	parts = append(parts, b.Other...)
	return strings.Join(parts, " ")
}

// NVRAMCommand returns the shell command that stores the boot-args on the
// target Mac. The change takes effect at the next boot. On macOS 10.11 and
// later, System Integrity Protection must allow NVRAM writes (from Recovery:
// `csrutil disable`, or `csrutil enable --without nvram` where supported).
func (b BootArgs) NVRAMCommand() string {
	return "sudo nvram boot-args=" + shellQuote(b.String())
}

// BootPlistSnippet returns the com.apple.Boot.plist "Kernel Flags" entry that
// older virtual machines read instead of NVRAM
// (/Library/Preferences/SystemConfiguration/com.apple.Boot.plist).
func (b BootArgs) BootPlistSnippet() string {
	return "<key>Kernel Flags</key>\n<string>" + xmlEscape(b.String()) + "</string>"
}

// StaticARP is one static ARP entry: the debugger host must reach the target's
// KDP stub without ARP (the stub answers ARP only with DB_ARP, and the
// target's own ARP cache is unusable in debugger context).
type StaticARP struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// ParseStaticARP validates an IPv4 address and a MAC address.
func ParseStaticARP(ip, mac string) (StaticARP, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return StaticARP{}, fmt.Errorf("static ARP: %w", err)
	}
	if !a.Is4() {
		return StaticARP{}, fmt.Errorf("static ARP: %s is not IPv4 (KDP runs over IPv4 only)", a)
	}
	hw, err := net.ParseMAC(padMAC(mac))
	if err != nil {
		return StaticARP{}, fmt.Errorf("static ARP: %w", err)
	}
	if len(hw) != 6 {
		return StaticARP{}, fmt.Errorf("static ARP: %s is not a 6-byte Ethernet address", mac)
	}
	return StaticARP{IP: a, MAC: hw}, nil
}

// Command returns the arp(8) command that adds the entry until reboot.
func (e StaticARP) Command() string {
	return "sudo arp -s " + e.IP.String() + " " + e.MAC.String()
}

// DefaultLaunchdLabel is the label LaunchdPlist uses when given none.
const DefaultLaunchdLabel = "com.machtrace.kdp.static-arp"

// LaunchdPlist returns a launchd property list that re-creates the entry at
// every boot. Install it as /Library/LaunchDaemons/<label>.plist (owned by
// root:wheel, mode 644) and load it with `sudo launchctl load -w <path>`.
func (e StaticARP) LaunchdPlist(label string) string {
	if label == "" {
		label = DefaultLaunchdLabel
	}
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>`)
	sb.WriteString(xmlEscape(label))
	sb.WriteString(`</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/sbin/arp</string>
		<string>-s</string>
		<string>`)
	sb.WriteString(e.IP.String())
	sb.WriteString(`</string>
		<string>`)
	sb.WriteString(e.MAC.String())
	sb.WriteString(`</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
`)
	return sb.String()
}

// LaunchdPath returns where LaunchdPlist's output belongs.
func LaunchdPath(label string) string {
	if label == "" {
		label = DefaultLaunchdLabel
	}
	return "/Library/LaunchDaemons/" + label + ".plist"
}

// padMAC widens one-digit groups ("0:50:56:f6:cc:a8", as macOS arp prints
// them) to the two digits net.ParseMAC wants.
func padMAC(s string) string {
	sep := ":"
	if strings.Contains(s, "-") {
		sep = "-"
	}
	parts := strings.Split(s, sep)
	if len(parts) != 6 {
		return s
	}
	for i, p := range parts {
		if len(p) == 1 {
			parts[i] = "0" + p
		}
	}
	return strings.Join(parts, sep)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func xmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(s)
}
