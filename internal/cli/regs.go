package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// RegsOptions are the options of `machtrace regs`.
type RegsOptions struct {
	Target TargetOptions
	TID    uint64
	FP     bool
	Debug  bool
	System bool
	JSON   bool
}

// NewCmdRegs builds `machtrace regs`.
func NewCmdRegs(f *Factory, runF func(*RegsOptions) error) *cobra.Command {
	o := &RegsOptions{}
	cmd := &cobra.Command{
		Use:   "regs (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Dump every thread's registers (thread_get_state)",
		Example: `  machtrace regs -p 1234
  machtrace regs -p 1234 --tid 1240 --fp
  machtrace regs --json -- ./myprog     # registers at the first instruction`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return flagErrorf("regs takes no arguments (got %q)", rest)
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return regsRun(f, s, o) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	cmd.Flags().Uint64Var(&o.TID, "tid", 0, "only thread `TID` (a vCPU number for kernels)")
	cmd.Flags().BoolVar(&o.FP, "fp", false, "also the FP/SIMD registers")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "also the hardware debug registers")
	cmd.Flags().BoolVar(&o.System, "system", false, "also control/system registers (kernel targets)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

// threadRegs is one thread's register dump, as printed in JSON.
type threadRegs struct {
	TID    tracer.ThreadID              `json:"tid"`
	Name   string                       `json:"name,omitempty"`
	Arch   string                       `json:"arch"`
	States map[string]map[string]string `json:"states"`
	Errors map[string]string            `json:"errors,omitempty"`
	order  []*tracer.Registers
}

func regsRun(f *Factory, s *Session, o *RegsOptions) error {
	flavors := []tracer.Flavor{tracer.FlavorGeneral}
	if o.FP {
		flavors = append(flavors, tracer.FlavorFloat)
	}
	if o.Debug {
		flavors = append(flavors, tracer.FlavorDebug)
	}
	if o.System {
		flavors = append(flavors, tracer.FlavorSystem)
	}
	var dumps []*threadRegs
	err := suspended(s.Target, func() error {
		threads, err := selectThreads(s.Target, o.TID)
		if err != nil {
			return err
		}
		for _, th := range threads {
			d := &threadRegs{TID: th.ID, Name: th.Name, Arch: s.Target.Arch().String(), States: map[string]map[string]string{}}
			for _, fl := range flavors {
				r, err := s.Target.ThreadState(th.ID, fl)
				if err != nil {
					if errors.Is(err, tracer.ErrNoThread) {
						break // exited meanwhile
					}
					if d.Errors == nil {
						d.Errors = map[string]string{}
					}
					d.Errors[fl.String()] = err.Error()
					continue
				}
				m := map[string]string{}
				for i := 0; i < r.Len(); i++ {
					m[r.Desc(i).Name] = regString(r, i)
				}
				d.States[fl.String()] = m
				d.order = append(d.order, r)
			}
			dumps = append(dumps, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(f.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(dumps)
	}
	sym := s.Symbolizer()
	for _, d := range dumps {
		title := fmt.Sprintf("thread %d", d.TID)
		if d.Name != "" {
			title += " (" + d.Name + ")"
		}
		fmt.Fprintln(f.IO.Out, title)
		for _, r := range d.order {
			if r.Flavor() == tracer.FlavorGeneral {
				fmt.Fprintf(f.IO.Out, "  pc at %s\n", sym.LookupLine(r.PC()))
			}
			writeRegisters(f.IO.Out, r)
		}
		flv := make([]string, 0, len(d.Errors))
		for k := range d.Errors {
			flv = append(flv, k)
		}
		slices.Sort(flv)
		for _, k := range flv {
			fmt.Fprintf(f.IO.Out, "  %s: %s\n", k, d.Errors[k])
		}
	}
	return nil
}

// regString formats register i: 0x-prefixed, zero-padded to its size.
func regString(r *tracer.Registers, i int) string {
	size := r.Desc(i).Size
	if size > 8 {
		b := slices.Clone(r.BytesAt(i))
		slices.Reverse(b) // most significant byte first
		return "0x" + hex.EncodeToString(b)
	}
	return fmt.Sprintf("0x%0*x", 2*size, r.At(i))
}

// writeRegisters prints scalar registers in aligned columns, four to a line,
// and vector registers one to a line.
func writeRegisters(w io.Writer, r *tracer.Registers) {
	fmt.Fprintf(w, "  [%s]\n", r.Flavor())
	nameW := 0
	for i := 0; i < r.Len(); i++ {
		nameW = max(nameW, len(r.Desc(i).Name))
	}
	col := 0
	var line strings.Builder
	flush := func() {
		if line.Len() > 0 {
			fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
			line.Reset()
		}
		col = 0
	}
	for i := 0; i < r.Len(); i++ {
		d := r.Desc(i)
		if d.Size > 8 {
			flush()
			fmt.Fprintf(w, "  %*s %s\n", nameW, d.Name, regString(r, i))
			continue
		}
		fmt.Fprintf(&line, "  %*s %-18s", nameW, d.Name, regString(r, i))
		col++
		if col == 4 {
			flush()
		}
	}
	flush()
}
