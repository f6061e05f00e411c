package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// ThreadsOptions are the options of `machtrace threads`.
type ThreadsOptions struct {
	Target TargetOptions
}

// NewCmdThreads builds `machtrace threads`.
func NewCmdThreads(f *Factory, runF func(*ThreadsOptions) error) *cobra.Command {
	o := &ThreadsOptions{}
	cmd := &cobra.Command{
		Use:   "threads (-p PID | --target URL | -- CMD ARGS...)",
		Short: "List threads (vCPUs for a kernel) with their state and PC",
		Example: `  machtrace threads -p 1234
  machtrace threads --target gdb://127.0.0.1:1234`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return flagErrorf("threads takes no arguments (got %q)", rest)
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return threadsRun(f, s) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	return cmd
}

func threadsRun(f *Factory, s *Session) error {
	t := s.Target
	tab := newTable(f.IO.Out, right, left, left, right, left)
	tab.Header("TID", "NAME", "STATE", "PC", "FUNCTION")
	var rows [][]string
	err := suspended(t, func() error {
		threads, err := t.Threads()
		if err != nil {
			return err
		}
		sym := s.Symbolizer()
		for _, th := range threads {
			pc, fn := "-", ""
			if r, err := t.ThreadState(th.ID, tracer.FlavorGeneral); err == nil {
				pc = fmt.Sprintf("%#x", r.PC())
				fn = sym.Lookup(r.PC()).String()
			}
			rows = append(rows, []string{fmt.Sprint(th.ID), th.Name, th.State.String(), pc, fn})
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "%s: %d threads (state as seen before machtrace stopped them)\n", t.Describe(), len(rows))
	for _, r := range rows {
		tab.Append(r)
	}
	return tab.Render()
}
