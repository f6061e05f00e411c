package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// MemOptions are the options of `machtrace mem`.
type MemOptions struct {
	Target TargetOptions
	Addr   string
	Len    uint64
	Poke   string // hex bytes to write
	Write  bool
	Raw    bool
}

// NewCmdMem builds `machtrace mem`.
func NewCmdMem(f *Factory, runF func(*MemOptions) error) *cobra.Command {
	o := &MemOptions{}
	cmd := &cobra.Command{
		Use:   "mem ADDR [LEN] (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Hexdump target memory (or write it with --poke HEX --write)",
		Long: `Read LEN bytes (default 64) at ADDR and hexdump them. ADDR is a number
(0x hex or decimal), a symbol, or symbol+offset.

With --poke HEX the bytes are written instead; that needs --write.`,
		Example: `  machtrace mem -p 1234 0x7ffd0000 128
  machtrace mem --target gdb://127.0.0.1:1234 --kallsyms System.map linux_banner 96
  machtrace mem -p 1234 counter --poke 2a000000 --write`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) < 1 || len(rest) > 2 {
				return flagErrorf("mem takes ADDR and an optional LEN")
			}
			o.Addr, o.Len = rest[0], 64
			if len(rest) == 2 {
				if o.Len, err = strconv.ParseUint(rest[1], 0, 64); err != nil || o.Len == 0 {
					return flagErrorf("LEN %q: want a positive number", rest[1])
				}
				if o.Len > 16<<20 {
					return flagErrorf("LEN %d: at most 16 MiB at a time", o.Len)
				}
			}
			if o.Poke != "" && !o.Write {
				return flagErrorf("--poke changes target memory: add --write to confirm")
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return memRun(f, s, o) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	cmd.Flags().StringVar(&o.Poke, "poke", "", "write these hex `BYTES` at ADDR (needs --write)")
	cmd.Flags().BoolVar(&o.Write, "write", false, "confirm a memory write")
	cmd.Flags().BoolVar(&o.Raw, "raw", false, "write the bytes read to stdout unformatted")
	return cmd
}

func memRun(f *Factory, s *Session, o *MemOptions) error {
	addr, err := parseAddress(s, o.Addr)
	if err != nil {
		return err
	}
	if o.Poke != "" {
		data, err := hex.DecodeString(strings.ReplaceAll(o.Poke, " ", ""))
		if err != nil || len(data) == 0 {
			return flagErrorf("--poke %q: want hex bytes like 90c3", o.Poke)
		}
		return suspended(s.Target, func() error {
			n, err := s.Target.WriteMemory(addr, data)
			if err != nil {
				return fmt.Errorf("write %d bytes at %#x: %w", len(data), addr, err)
			}
			fmt.Fprintf(f.IO.Out, "wrote %d bytes at %#x\n", n, addr)
			return nil
		})
	}
	buf := make([]byte, o.Len)
	var n int
	err = suspended(s.Target, func() error {
		var rerr error
		n, rerr = s.Target.ReadMemory(addr, buf)
		return rerr
	})
	if err != nil && n == 0 {
		if errors.Is(err, tracer.ErrUnmapped) {
			return fmt.Errorf("%w (nothing mapped at %#x: check the address against machtrace's image list or /proc/PID/maps)", err, addr)
		}
		return err
	}
	if o.Raw {
		_, werr := f.IO.Out.Write(buf[:n])
		return werr
	}
	hexdump(f.IO.Out, addr, buf[:n])
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "machtrace: read stopped after %d of %d bytes: %v\n", n, len(buf), err)
	}
	return nil
}

// hexdump prints 16 bytes a line with the address and an ASCII column.
func hexdump(w io.Writer, addr uint64, b []byte) {
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		var hx, asc strings.Builder
		for i := 0; i < 16; i++ {
			if i == 8 {
				hx.WriteByte(' ')
			}
			if i < len(line) {
				fmt.Fprintf(&hx, "%02x ", line[i])
				c := line[i]
				if c < 0x20 || c > 0x7e {
					c = '.'
				}
				asc.WriteByte(c)
			} else {
				hx.WriteString("   ")
			}
		}
		fmt.Fprintf(w, "%016x  %s |%s|\n", addr+uint64(off), hx.String(), asc.String())
	}
}
