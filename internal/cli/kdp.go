package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/darwin"
	"github.com/machtrace/machtrace/kdpbridge"
)

// NewCmdKDP builds the `kdp` command group: setting up a Mac for KDP
// debugging, and serving any target over KDP.
func NewCmdKDP(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kdp <command>",
		Short: "Kernel Debugging Protocol tools: boot-args for a Mac, a KDP stub for any target",
		Long: `Apple's Kernel Debugging Protocol (KDP) reaches an XNU kernel's debug stub
over UDP port 41139. "machtrace kdp bootargs" prints what the target Mac and
the debugger host need; "machtrace kdp serve" turns any target machtrace can
trace into a KDP stub that LLDB's kdp-remote can debug. "machtrace kdp
sample" samples a KDP kernel through a breakpoint trigger, since KDP cannot
stop a running kernel at will.

To read a halted kernel over KDP use the other commands with
--target kdp://HOST (threads, regs, setreg --write, mem, disasm).`,
	}
	cmd.AddCommand(NewCmdKDPBootargs(f, nil), NewCmdKDPServe(f, nil), NewCmdKDPSample(f, nil))
	return cmd
}

// KDPBootargsOptions are the options of `kdp bootargs`.
type KDPBootargsOptions struct {
	IO IOStreams

	Debug     string // debug= value or flag names; empty means the recommended 0x144
	NoVerbose bool
	Extra     []string
	List      bool

	HostIP, HostMAC     string // the debugger host, as the target Mac must reach it
	TargetIP, TargetMAC string // the target Mac, as the debugger host must reach it
	Label               string
}

// NewCmdKDPBootargs builds `kdp bootargs`.
func NewCmdKDPBootargs(f *Factory, runF func(*KDPBootargsOptions) error) *cobra.Command {
	opts := &KDPBootargsOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "bootargs [DEBUG-FLAGS]",
		Short: "Compose and explain XNU debug= boot-args, static ARP and a launchd job for KDP",
		Long: `Compose the boot-args a Mac needs for two-machine kernel debugging over KDP,
explain every bit of debug= (names and values from XNU's osfmk/kern/debug.h,
with the bits newer XNU releases ignore marked obsolete), and print the
commands to apply them.

DEBUG-FLAGS is a number (0x144, 324) or flag names joined by | or ,
(DB_NMI|DB_ARP, nmi,arp). The default is 0x144 (DB_NMI|DB_ARP|DB_LOG_PI_SCRN),
the classic setting from Apple's kernel debugging guide.

With --host-ip and --host-mac it also prints the static ARP entry the target
needs for the debugger host (in debugger context the kernel cannot resolve
addresses) and a launchd job that re-creates it at every boot; with
--target-ip and --target-mac, the entry the debugger host needs for the
target.`,
		Example: `  machtrace kdp bootargs
  machtrace kdp bootargs 0x144 --host-ip 192.168.203.2 --host-mac 0:50:56:f6:cc:a8
  machtrace kdp bootargs 'DB_HALT|DB_ARP' --target-ip 192.168.203.128 --target-mac 00:0c:29:aa:bb:cc
  machtrace kdp bootargs --list`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Debug = args[0]
			}
			if (opts.HostIP == "") != (opts.HostMAC == "") {
				return flagErrorf("--host-ip and --host-mac go together")
			}
			if (opts.TargetIP == "") != (opts.TargetMAC == "") {
				return flagErrorf("--target-ip and --target-mac go together")
			}
			if runF != nil {
				return runF(opts)
			}
			return kdpBootargsRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.NoVerbose, "no-verbose", false, "leave out -v (verbose boot; panics stay on the console)")
	fl.StringSliceVar(&opts.Extra, "extra", nil, "more boot-args to keep, e.g. keepsyms=1 (repeatable)")
	fl.BoolVar(&opts.List, "list", false, "list every debug= flag XNU defines and exit")
	fl.StringVar(&opts.HostIP, "host-ip", "", "IPv4 `ADDRESS` of the debugger host, as the target reaches it")
	fl.StringVar(&opts.HostMAC, "host-mac", "", "Ethernet `ADDRESS` of the debugger host's interface")
	fl.StringVar(&opts.TargetIP, "target-ip", "", "IPv4 `ADDRESS` of the target Mac")
	fl.StringVar(&opts.TargetMAC, "target-mac", "", "Ethernet `ADDRESS` of the target Mac's interface")
	fl.StringVar(&opts.Label, "label", darwin.DefaultLaunchdLabel, "launchd `LABEL` of the static-ARP job")
	return cmd
}

func kdpBootargsRun(opts *KDPBootargsOptions) error {
	out := opts.IO.Out
	if opts.List {
		writeFlagTable(out, darwin.AllDebugFlags())
		return nil
	}
	flags := darwin.RecommendedDebugFlags
	if opts.Debug != "" {
		var err error
		if flags, err = darwin.ParseDebugFlags(opts.Debug); err != nil {
			return &FlagError{Err: err}
		}
	}
	ba := darwin.BootArgs{Verbose: !opts.NoVerbose, Debug: flags, HasDebug: true, Other: opts.Extra}

	fmt.Fprintf(out, "boot-args: %s\n", ba)
	fmt.Fprintf(out, "debug=%s is %s:\n", flags, flags.Names())
	writeFlagTable(out, flags.Explain())
	if o := flags.Obsolete(); o != 0 {
		fmt.Fprintf(out, "note: %s (%s) does nothing on macOS 11 and later; it is harmless.\n", o, o.Names())
	}
	if u := flags.Unknown(); u != 0 {
		fmt.Fprintf(out, "warning: %s is not a flag XNU defines.\n", u)
	}
	if flags&(darwin.DBHalt|darwin.DBNMI) == 0 {
		fmt.Fprintln(out, "warning: without DB_HALT or DB_NMI the kernel enters the debugger only on a panic or a breakpoint.")
	}

	fmt.Fprintf(out, "\nOn the target Mac (effective at the next boot; with SIP, NVRAM writes need\n`csrutil disable` from Recovery):\n  %s\n", ba.NVRAMCommand())
	fmt.Fprintf(out, "Virtual machines that read com.apple.Boot.plist instead of NVRAM\n(/Library/Preferences/SystemConfiguration/com.apple.Boot.plist):\n  %s\n",
		strings.ReplaceAll(ba.BootPlistSnippet(), "\n", "\n  "))

	if opts.HostIP != "" {
		e, err := darwin.ParseStaticARP(opts.HostIP, opts.HostMAC)
		if err != nil {
			return &FlagError{Err: err}
		}
		path := darwin.LaunchdPath(opts.Label)
		fmt.Fprintf(out, "\nOn the target Mac, a static ARP entry for the debugger host (until reboot):\n  %s\n", e.Command())
		fmt.Fprintf(out, "To re-create it at every boot, save this as %s\n(root:wheel, mode 644) and run `sudo launchctl load -w %s`:\n%s", path, path, e.LaunchdPlist(opts.Label))
	}
	if opts.TargetIP != "" {
		e, err := darwin.ParseStaticARP(opts.TargetIP, opts.TargetMAC)
		if err != nil {
			return &FlagError{Err: err}
		}
		fmt.Fprintf(out, "\nOn the debugger host, a static ARP entry for the target:\n  %s\n", e.Command())
		fmt.Fprintf(out, "\nThen, once the target is in the debugger (NMI, panic or DB_HALT at boot):\n  lldb -o 'kdp-remote %s'\n  machtrace regs --target kdp://%s\n", e.IP, e.IP)
	}
	return nil
}

func writeFlagTable(out io.Writer, infos []darwin.DebugFlagInfo) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, d := range infos {
		name := d.Name
		if name == "" {
			name = "(unknown)"
		}
		meaning := d.Meaning
		if d.Obsolete != "" {
			meaning += " [obsolete: " + d.Obsolete + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Flag, name, meaning)
	}
	tw.Flush()
}

// KDPServeOptions are the options of `kdp serve`.
type KDPServeOptions struct {
	IO     IOStreams
	Open   func(*TargetOptions) (*Session, error)
	Target TargetOptions

	Listen        string
	KernelVersion string
	ReplyToSource bool
	Log           bool
}

// NewCmdKDPServe builds `kdp serve`.
func NewCmdKDPServe(f *Factory, runF func(*KDPServeOptions) error) *cobra.Command {
	opts := &KDPServeOptions{IO: f.IO, Open: f.Open}
	cmd := &cobra.Command{
		Use:   "serve (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Serve a process (or any target) over KDP so LLDB's kdp-remote can debug it",
		Long: `Serve a target over Apple's Kernel Debugging Protocol, as an XNU kernel's
debug stub would: LLDB's "kdp-remote HOST[:PORT]" then connects, reads and
writes registers and memory, sets breakpoints, continues and stops.

The target is halted while waiting for the debugger and while it holds the
target stopped; it runs after "continue" until a breakpoint is hit (reported
as EXC_BREAKPOINT), and after "detach", which removes every breakpoint. The
target's current thread is KDP's one CPU. Ctrl-C removes the breakpoints,
lets the target run and detaches.

A Linux process gets its breakpoints as jumps-to-self that the server finds
by suspending it every 20 ms while it runs (an int3's SIGTRAP would reach the
process), and LLDB's single steps are emulated; docs/kdp.md has the details.

LLDB's kdp-remote plugin exists only in macOS builds of LLDB (or a Linux build
with the plugin enabled).`,
		Example: `  machtrace kdp serve -p 1234
  machtrace kdp serve --listen 0.0.0.0:41139 -- ./a.out arg
  lldb -o 'kdp-remote 127.0.0.1:41139'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := opts.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return flagErrorf("unexpected argument %q (a command to launch goes after --)", rest[0])
			}
			if _, err := net.ResolveUDPAddr("udp4", opts.Listen); err != nil {
				return flagErrorf("--listen %q: %v", opts.Listen, err)
			}
			if runF != nil {
				return runF(opts)
			}
			return kdpServeRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd, &opts.Target)
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", kdpbridge.DefaultServerAddr, "UDP `ADDRESS` to serve KDP on")
	fl.StringVar(&opts.KernelVersion, "kernel-version", "", "KERNELVERSION `STRING` to report (default: an \"EFI ...\" string, so LLDB does not look for XNU)")
	fl.BoolVar(&opts.ReplyToSource, "reply-to-source", false, "answer the UDP source address instead of the ports the debugger announces (NAT, proxies)")
	fl.BoolVar(&opts.Log, "log", false, "log every protocol event to stderr")
	return cmd
}

func kdpServeRun(ctx context.Context, opts *KDPServeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := opts.Open(&opts.Target)
	if err != nil {
		return err
	}
	defer s.Close()
	so := kdpbridge.ServerOptions{KernelVersion: opts.KernelVersion, ReplyToSource: opts.ReplyToSource}
	if opts.Log {
		so.Logf = func(format string, args ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", args...) }
	}
	err = kdpbridge.ListenAndServe(ctx, opts.Listen, s.Target, so, func(a net.Addr) {
		fmt.Fprintf(opts.IO.ErrOut, "serving %s over KDP on udp://%s (halted until a debugger connects)\nconnect with: lldb -o 'kdp-remote %s'\n",
			s.Target.Describe(), a, a)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// KDPSampleOptions are the options of `kdp sample`.
type KDPSampleOptions struct {
	IO      IOStreams
	Open    func(*TargetOptions) (*Session, error)
	Target  TargetOptions
	Trigger string
	Count   int
	Timeout time.Duration
}

// NewCmdKDPSample builds `kdp sample`.
func NewCmdKDPSample(f *Factory, runF func(*KDPSampleOptions) error) *cobra.Command {
	opts := &KDPSampleOptions{IO: f.IO, Open: f.Open}
	cmd := &cobra.Command{
		Use:   "sample --target kdp://HOST --trigger ADDRESS [-n COUNT]",
		Short: "Sample a KDP kernel through a breakpoint trigger",
		Long: `KDP cannot stop a running kernel, so a KDP target cannot be sampled by
suspending it at a rate the way "machtrace sample" does. This samples it
through a trigger instead: a breakpoint on a kernel function's address. Each
time the kernel hits it, machtrace reads the registers and the stack (the
return address, then the frame pointers), steps over the breakpoint and lets
the kernel run to the next hit. The result says who calls the function.

The kernel must be halted in its debugger when machtrace connects; it runs
between hits and after the last one. If the function never runs, the wait
times out and the kernel keeps running (KDP cannot take it back).`,
		Example: `  machtrace kdp sample --target kdp://192.168.64.2 --trigger 0xffffff8000a1b2c0 -n 50`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := opts.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return flagErrorf("unexpected argument %q", rest[0])
			}
			if !strings.HasPrefix(strings.ToLower(opts.Target.URL), "kdp://") {
				return flagErrorf("kdp sample needs --target kdp://HOST (other targets can be halted at will: use machtrace sample)")
			}
			if opts.Trigger == "" {
				return flagErrorf("--trigger ADDRESS is required: the kernel function whose hits are the samples")
			}
			if opts.Count < 1 {
				return flagErrorf("-n %d: want at least 1", opts.Count)
			}
			if runF != nil {
				return runF(opts)
			}
			return kdpSampleRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd, &opts.Target)
	fl := cmd.Flags()
	fl.StringVar(&opts.Trigger, "trigger", "", "kernel function to break on: an `ADDRESS` (0x...) or a symbol the target's images name")
	fl.IntVarP(&opts.Count, "count", "n", 10, "hits to collect")
	fl.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "longest wait for one hit")
	return cmd
}

func kdpSampleRun(ctx context.Context, opts *KDPSampleOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := opts.Open(&opts.Target)
	if err != nil {
		return err
	}
	defer s.Close()
	addr, err := parseAddress(s, opts.Trigger)
	if err != nil {
		return fmt.Errorf("--trigger: %w", err)
	}
	sym := s.Symbolizer()
	name := func(a uint64) string {
		loc := sym.Lookup(a)
		if loc.Func == "" {
			return fmt.Sprintf("%#x", a)
		}
		return fmt.Sprintf("%#x %s+%#x", a, loc.Func, loc.Offset)
	}
	fmt.Fprintf(opts.IO.ErrOut, "sampling %s through a breakpoint at %s (%d hits)\n", s.Target.Describe(), name(addr), opts.Count)
	callers := map[uint64]int{}
	n, err := kdpbridge.SampleByBreakpoint(ctx, s.Target, addr, kdpbridge.SampleOptions{Count: opts.Count, Timeout: opts.Timeout}, func(b kdpbridge.BreakpointSample) error {
		fmt.Fprintf(opts.IO.Out, "hit cpu%d sp=%#x\n", b.CPU, b.Regs.SP())
		for i, pc := range b.Stack {
			fmt.Fprintf(opts.IO.Out, "  #%-2d %s\n", i, name(pc))
		}
		if len(b.Stack) > 1 {
			callers[b.Stack[1]]++
		}
		return nil
	})
	if n > 0 {
		type kv struct {
			pc uint64
			n  int
		}
		var list []kv
		for pc, c := range callers {
			list = append(list, kv{pc, c})
		}
		sort.Slice(list, func(i, j int) bool {
			return list[i].n > list[j].n || (list[i].n == list[j].n && list[i].pc < list[j].pc)
		})
		fmt.Fprintf(opts.IO.Out, "\n%d hits; callers (return addresses):\n", n)
		for _, e := range list {
			fmt.Fprintf(opts.IO.Out, "  %5d  %s\n", e.n, name(e.pc))
		}
	}
	return err
}
