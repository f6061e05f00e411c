package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// ExitCode is the process exit status of machtrace.
type ExitCode int

// Exit codes.
const (
	ExitOK     ExitCode = 0
	ExitError  ExitCode = 1
	ExitUsage  ExitCode = 2
	ExitCancel ExitCode = 130
)

// Main runs machtrace with os.Args and returns the exit code.
func Main() ExitCode {
	f := NewFactory()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewCmdRoot(f)
	root.SetArgs(os.Args[1:])
	err := root.ExecuteContext(ctx)
	return reportError(f, err)
}

// reportError prints err and maps it to an exit code: usage errors print the
// usage hint, everything else its message.
func reportError(f *Factory, err error) ExitCode {
	if err == nil {
		return ExitOK
	}
	var fe *FlagError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(f.IO.ErrOut, "machtrace: %v\nRun 'machtrace --help' for usage.\n", err)
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitCancel
	}
	fmt.Fprintf(f.IO.ErrOut, "machtrace: %v\n", err)
	return ExitError
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "machtrace <command> [flags] [-p PID | --target URL | -- CMD ARGS...]",
		Short: "Sample, inspect and poke processes and kernels, the Mach way",
		Long: `machtrace suspends a target, reads every thread's registers, walks stacks and
resumes it. From that loop come a sampling profiler, register dumps and
writes, memory reads and disassembly at the PC.

A target is named the same way everywhere:
  -p PID                      attach to a running process
  -- CMD ARGS...              launch CMD stopped before its first instruction
  --target kdp://HOST[:PORT]  an XNU kernel's KDP debug stub (UDP 41139)
  --target gdb://HOST:PORT    a hypervisor GDB stub (QEMU -gdb, VMware)`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &FlagError{Err: err} })
	for _, c := range []*cobra.Command{
		NewCmdThreads(f, nil),
		NewCmdRegs(f, nil),
		NewCmdSetReg(f, nil),
		NewCmdMem(f, nil),
		NewCmdDisasm(f, nil),
		NewCmdSample(f, nil),
		NewCmdSetup(f, nil),
		NewCmdDoctor(f, nil),
		NewCmdSelftest(f, nil),
		NewCmdKDP(f),
	} {
		root.AddCommand(c)
	}
	return root
}

// FlagError is a usage mistake: it alone makes machtrace print the usage hint.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

func flagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}
