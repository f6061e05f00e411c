package cli

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// SetRegOptions are the options of `machtrace setreg`.
type SetRegOptions struct {
	Target  TargetOptions
	TID     uint64
	Write   bool
	Assigns []string // REG=VALUE
}

// NewCmdSetReg builds `machtrace setreg`.
func NewCmdSetReg(f *Factory, runF func(*SetRegOptions) error) *cobra.Command {
	o := &SetRegOptions{}
	cmd := &cobra.Command{
		Use:   "setreg --tid TID REG=VALUE... --write (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Write registers of one thread (thread_set_state); needs --write",
		Long: `Write registers of one thread, the thread_set_state equivalent. The target
is suspended, the thread's state read, the named registers changed, the state
written back and read again to confirm, and the target resumed.

Values are numbers (0x hex or decimal); vector registers take up to their
width in hex (0x...). Nothing is written without --write.`,
		Example: `  machtrace setreg -p 1234 --tid 1234 rax=0x2a --write
  machtrace setreg -p 1234 --tid 1240 xmm0=0x0102030405060708090a0b0c0d0e0f10 --write`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) == 0 {
				return flagErrorf("name at least one REG=VALUE")
			}
			o.Assigns = rest
			if o.TID == 0 {
				return flagErrorf("--tid is required: setreg writes one thread (list them with machtrace threads)")
			}
			if !o.Write {
				return flagErrorf("setreg changes the target's registers: add --write to confirm")
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return setRegRun(f, s, o) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	cmd.Flags().Uint64Var(&o.TID, "tid", 0, "the thread `TID` to write (a vCPU number for kernels)")
	cmd.Flags().BoolVar(&o.Write, "write", false, "confirm that registers are to be written")
	return cmd
}

type assignment struct {
	name  string
	value []byte // little-endian
}

func parseAssignments(args []string) ([]assignment, error) {
	var out []assignment
	for _, a := range args {
		name, val, ok := strings.Cut(a, "=")
		if !ok || name == "" || val == "" {
			return nil, flagErrorf("%q: want REG=VALUE", a)
		}
		b, err := parseRegValue(val)
		if err != nil {
			return nil, flagErrorf("%s: %v", name, err)
		}
		out = append(out, assignment{name: strings.ToLower(name), value: b})
	}
	return out, nil
}

// parseRegValue parses a value into little-endian bytes: a number that fits
// 64 bits, or a longer 0x hex string for a vector register.
func parseRegValue(s string) ([]byte, error) {
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		b := make([]byte, 8)
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		return b, nil
	}
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return parseRegValue(strconv.FormatUint(uint64(v), 10))
	}
	h, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	if !ok {
		return nil, fmt.Errorf("%q is not a number (use decimal or 0x hex)", s)
	}
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex", s)
	}
	slices.Reverse(b)
	return b, nil
}

func setRegRun(f *Factory, s *Session, o *SetRegOptions) error {
	assigns, err := parseAssignments(o.Assigns)
	if err != nil {
		return err
	}
	t := s.Target
	tid := tracer.ThreadID(o.TID)
	return suspended(t, func() error {
		if _, err := selectThreads(t, o.TID); err != nil {
			return err
		}
		// Group the assignments by the flavor that holds each register.
		states := map[tracer.Flavor]*tracer.Registers{}
		var order []tracer.Flavor
		for _, a := range assigns {
			var found bool
			for _, fl := range []tracer.Flavor{tracer.FlavorGeneral, tracer.FlavorFloat, tracer.FlavorDebug, tracer.FlavorSystem} {
				r := states[fl]
				if r == nil {
					var err error
					if r, err = t.ThreadState(tid, fl); err != nil {
						continue
					}
				}
				i := r.Layout().Index(a.name)
				if i < 0 {
					continue
				}
				if err := setBytes(r, i, a.value); err != nil {
					return fmt.Errorf("%s: %w", a.name, err)
				}
				if states[fl] == nil {
					states[fl] = r
					order = append(order, fl)
				}
				found = true
				break
			}
			if !found {
				return &tracer.UnknownRegisterError{Name: a.name, Arch: t.Arch(), Flavor: tracer.FlavorGeneral}
			}
		}
		for _, fl := range order {
			if err := t.SetThreadState(tid, states[fl]); err != nil {
				return fmt.Errorf("write %s state of thread %d: %w", fl, tid, err)
			}
			back, err := t.ThreadState(tid, fl)
			if err != nil {
				return fmt.Errorf("read back %s state of thread %d: %w", fl, tid, err)
			}
			for _, a := range assigns {
				if i := back.Layout().Index(a.name); i >= 0 {
					fmt.Fprintf(f.IO.Out, "thread %d: %s = %s\n", tid, back.Desc(i).Name, regString(back, i))
				}
			}
		}
		return nil
	})
}

// setBytes stores a little-endian value in register i, refusing values wider
// than the register (leading zero bytes are allowed).
func setBytes(r *tracer.Registers, i int, value []byte) error {
	size := r.Desc(i).Size
	for len(value) > size {
		if value[len(value)-1] != 0 {
			return fmt.Errorf("value does not fit the %d-byte register", size)
		}
		value = value[:len(value)-1]
	}
	return r.SetBytesAt(i, value)
}
