package cli

import (
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// TargetOptions name a target: -p PID, --target URL, or a command after --.
type TargetOptions struct {
	PID  int
	URL  string
	Argv []string
	// Kallsyms is a System.map or /proc/kallsyms file for kernel targets.
	Kallsyms string
}

// addTargetFlags binds the target flags to o.
func addTargetFlags(cmd *cobra.Command, o *TargetOptions) {
	cmd.Flags().IntVarP(&o.PID, "pid", "p", 0, "attach to the running process `PID`")
	cmd.Flags().StringVar(&o.URL, "target", "", "a kernel target: kdp://HOST[:41139] or gdb://HOST:PORT")
	cmd.Flags().StringVar(&o.Kallsyms, "kallsyms", "", "kernel symbols for a kernel target: a System.map or /proc/kallsyms `FILE`")
	cmd.MarkFlagsMutuallyExclusive("pid", "target")
}

// splitTargetArgs separates positional arguments from the command after "--"
// and checks that exactly one target is named.
func (o *TargetOptions) splitTargetArgs(cmd *cobra.Command, args []string) ([]string, error) {
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		o.Argv = append([]string(nil), args[dash:]...)
		args = args[:dash]
		if len(o.Argv) == 0 {
			return nil, flagErrorf("nothing to launch after --")
		}
	}
	n := 0
	if o.PID != 0 {
		n++
	}
	if o.URL != "" {
		n++
	}
	if len(o.Argv) > 0 {
		n++
	}
	switch {
	case n == 0:
		return nil, flagErrorf("no target: name one with -p PID, --target URL or -- CMD ARGS")
	case n > 1:
		return nil, flagErrorf("name one target only: -p PID, --target URL or -- CMD ARGS")
	case o.PID < 0:
		return nil, flagErrorf("invalid pid %d", o.PID)
	}
	return args, nil
}

// Session is an open target plus what the CLI learned while opening it.
type Session struct {
	Target tracer.Target
	// Launched is true when machtrace started the process (it is then
	// suspended at its first instruction until resumed).
	Launched bool
	// Kernel is true for kernel targets (KDP, GDB stubs).
	Kernel bool
	// Symbols resolves addresses; nil until Symbolizer is first called.
	symbols *tracer.Symbolizer
	// KernelSymbols, when set by a kernel opener, replaces the image-based
	// symbolizer.
	KernelSymbols *tracer.Symbolizer
}

// Symbolizer returns the session's symbolizer, built from the target's image
// list on first use.
func (s *Session) Symbolizer() *tracer.Symbolizer {
	if s.KernelSymbols != nil {
		return s.KernelSymbols
	}
	if s.symbols == nil {
		images, _ := s.Target.Images()
		s.symbols = tracer.NewSymbolizer(images, &tracer.SymbolizerOptions{ReadMemory: s.Target.ReadMemory})
	}
	return s.symbols
}

// Close detaches from the target and leaves it running.
func (s *Session) Close() error { return s.Target.Close() }

// openTarget opens what o names.
func openTarget(o *TargetOptions) (*Session, error) {
	switch {
	case o.PID != 0:
		t, err := tracer.Attach(o.PID)
		if err != nil {
			return nil, err
		}
		return &Session{Target: t}, nil
	case len(o.Argv) > 0:
		t, err := tracer.Launch(o.Argv, tracer.LaunchOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			return nil, err
		}
		return &Session{Target: t, Launched: true}, nil
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || u.Host == "" {
			return nil, flagErrorf("--target %q: want kdp://HOST[:PORT] or gdb://HOST:PORT", o.URL)
		}
		switch strings.ToLower(u.Scheme) {
		case "gdb":
			return openGDB(o, u)
		case "kdp":
			return openKDP(o, u)
		default:
			return nil, flagErrorf("--target %q: unknown scheme %q (want kdp or gdb)", o.URL, u.Scheme)
		}
	}
	return nil, errors.New("no target named")
}
