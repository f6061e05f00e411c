package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// DisasmOptions are the options of `machtrace disasm`.
type DisasmOptions struct {
	Target TargetOptions
	Addr   string
	Count  int
	TID    uint64
}

// NewCmdDisasm builds `machtrace disasm`.
func NewCmdDisasm(f *Factory, runF func(*DisasmOptions) error) *cobra.Command {
	o := &DisasmOptions{}
	cmd := &cobra.Command{
		Use:   "disasm [ADDR] [-n N] [--tid TID] (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Disassemble at an address or around a thread's PC (marked =>)",
		Long: `Disassemble N instructions. Without ADDR, around the PC of the thread --tid
names (default: the first thread); with ADDR (a number, a symbol or
symbol+offset), from ADDR. The thread's PC is marked with =>.`,
		Example: `  machtrace disasm -p 1234
  machtrace disasm -p 1234 main.main -n 40`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			switch len(rest) {
			case 0:
			case 1:
				o.Addr = rest[0]
			default:
				return flagErrorf("disasm takes at most one ADDR")
			}
			if o.Count <= 0 || o.Count > 10000 {
				return flagErrorf("-n %d: want 1 to 10000 instructions", o.Count)
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return disasmRun(f, s, o) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	cmd.Flags().IntVarP(&o.Count, "count", "n", 16, "number of instructions")
	cmd.Flags().Uint64Var(&o.TID, "tid", 0, "the thread whose PC to use and mark (default: the first)")
	return cmd
}

func disasmRun(f *Factory, s *Session, o *DisasmOptions) error {
	t := s.Target
	sym := s.Symbolizer()
	var insts []tracer.Instruction
	var pc uint64
	var tid tracer.ThreadID
	err := suspended(t, func() error {
		threads, err := selectThreads(t, o.TID)
		if err != nil {
			return err
		}
		if len(threads) > 0 {
			tid = threads[0].ID
			if r, err := t.ThreadState(tid, tracer.FlavorGeneral); err == nil {
				pc = r.PC()
			}
		}
		if o.Addr == "" {
			if pc == 0 {
				return fmt.Errorf("no thread PC to disassemble around; give an ADDR")
			}
			insts, err = tracer.DisassembleAround(t.Arch(), t.ReadMemory, sym, pc, min(8, o.Count/2), o.Count-min(8, o.Count/2)-1)
			return err
		}
		addr, err := parseAddress(s, o.Addr)
		if err != nil {
			return err
		}
		code := make([]byte, o.Count*15)
		n, rerr := t.ReadMemory(addr, code)
		if n == 0 {
			return fmt.Errorf("read code at %#x: %w", addr, rerr)
		}
		insts = tracer.Disassemble(t.Arch(), code[:n], addr, sym.SymName)
		if len(insts) > o.Count {
			insts = insts[:o.Count]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if pc != 0 {
		fmt.Fprintf(f.IO.Out, "thread %d pc %#x %s\n", tid, pc, sym.LookupLine(pc))
	}
	lastFunc := ""
	for _, in := range insts {
		loc := sym.Lookup(in.Addr)
		if loc.Func != lastFunc {
			lastFunc = loc.Func
			if loc.Func != "" {
				fmt.Fprintf(f.IO.Out, "%s:\n", loc.Func)
			}
		}
		mark := "  "
		if in.Addr == pc {
			mark = "=>"
		}
		off := ""
		if loc.Func != "" {
			off = fmt.Sprintf("<+%d>", loc.Offset)
		}
		fmt.Fprintf(f.IO.Out, "%s %#x %-8s %-30s %s\n", mark, in.Addr, off, fmt.Sprintf("% x", in.Bytes), in.Text)
	}
	return nil
}
