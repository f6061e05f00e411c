package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/tracer"
)

// SampleOptions are the options of `machtrace sample`.
type SampleOptions struct {
	Target    TargetOptions
	Rate      float64
	Duration  time.Duration
	Threads   bool
	NoUnwind  bool
	StopAll   bool
	OnCPU     bool
	Realtime  bool
	Top       int
	MinRunGap time.Duration
	Output    string // pprof file
	Folded    string // folded stacks file
	Flame     string // SVG flame graph file
}

// NewCmdSample builds `machtrace sample`.
func NewCmdSample(f *Factory, runF func(*SampleOptions) error) *cobra.Command {
	o := &SampleOptions{}
	cmd := &cobra.Command{
		Use:   "sample [-F HZ] [-d DURATION] [--threads] (-p PID | --target URL | -- CMD ARGS...)",
		Short: "Profile by suspending the target, reading every thread's PC and stack, and resuming it",
		Long: `Sample the target at HZ: suspend it, read every thread's registers, walk its
frame pointers, resume it. At the end, print the hottest functions (self: at
the top of the stack; total: anywhere on it) and, with --threads, the samples
per thread. Ctrl-C ends early and still prints the result; the target is
detached and keeps running.

The summary line is the sampler's own account: ticks taken, late and missed,
and the share of wall time the target spent stopped.

A KDP kernel target cannot be halted at will, so it cannot be sampled this
way; use a GDB stub (--target gdb://) to sample a kernel.`,
		Example: `  machtrace sample -p 1234 -F 999 -d 5s
  machtrace sample -d 2s -- ./workload
  machtrace sample -p 1234 -o cpu.pb.gz && go tool pprof -top cpu.pb.gz`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, err := o.Target.splitTargetArgs(cmd, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return flagErrorf("sample takes no arguments (got %q); put the command after --", rest)
			}
			if o.Rate <= 0 || o.Rate > 100000 {
				return flagErrorf("-F %g: want 0 < HZ <= 100000", o.Rate)
			}
			if o.Duration < 0 {
				return flagErrorf("-d %v: want a positive duration", o.Duration)
			}
			if runF != nil {
				return runF(o)
			}
			return withTarget(cmd.Context(), f, &o.Target, func(s *Session) error { return sampleRun(cmd.Context(), f, s, o) })
		},
	}
	addTargetFlags(cmd, &o.Target)
	cmd.Flags().Float64VarP(&o.Rate, "frequency", "F", 99, "samples per second")
	cmd.Flags().DurationVarP(&o.Duration, "duration", "d", 0, "how long to sample (default: until Ctrl-C or the target exits)")
	cmd.Flags().BoolVar(&o.Threads, "threads", false, "also print samples per thread")
	cmd.Flags().BoolVar(&o.NoUnwind, "no-unwind", false, "record the PC only, without walking frame pointers")
	cmd.Flags().IntVar(&o.Top, "top", 25, "functions to list")
	cmd.Flags().BoolVar(&o.OnCPU, "on-cpu", false, "report only samples of threads that were not blocked in a system call (an on-CPU profile)")
	cmd.Flags().BoolVar(&o.Realtime, "realtime", false, "run the sampling thread at real-time priority (SCHED_FIFO; root) so busy targets cannot starve it")
	cmd.Flags().BoolVar(&o.StopAll, "stop-all", false, "stop every thread at every tick, even threads still asleep where they were last sampled")
	cmd.Flags().DurationVar(&o.MinRunGap, "min-run", 0, "least time the target runs between samples (kernel targets default to 2ms)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "also write a pprof profile to `FILE` (go tool pprof, speedscope)")
	cmd.Flags().StringVar(&o.Folded, "folded", "", "also write folded stacks to `FILE` (flamegraph.pl, inferno)")
	cmd.Flags().StringVar(&o.Flame, "flamegraph", "", "also write an SVG flame graph to `FILE` (per thread with --threads)")
	return cmd
}

func sampleRun(ctx context.Context, f *Factory, s *Session, o *SampleOptions) error {
	t := s.Target
	if t.Suspended() {
		// Launched: stopped at its first instruction until now.
		if err := t.Resume(); err != nil {
			return err
		}
	}
	opts := tracer.SampleOptions{Rate: o.Rate, Duration: o.Duration, Unwind: !o.NoUnwind, MinRunGap: o.MinRunGap, StopAll: o.StopAll, Realtime: o.Realtime}
	if s.Kernel && opts.MinRunGap == 0 {
		opts.MinRunGap = 2 * time.Millisecond
	}
	if f.IO.ErrIsTerminal {
		opts.Progress = func(st tracer.SampleStats) {
			fmt.Fprintf(f.IO.ErrOut, "\r\033[Ksampling %s: %d samples, %.1fs, %.0f Hz, stopped %.1f%%",
				t.Describe(), st.Samples, st.Wall.Seconds(), st.AchievedRate(), 100*st.StoppedFraction())
		}
	}
	fmt.Fprintf(f.IO.ErrOut, "sampling %s at %g Hz", t.Describe(), o.Rate)
	if o.Duration > 0 {
		fmt.Fprintf(f.IO.ErrOut, " for %v", o.Duration)
	}
	fmt.Fprintln(f.IO.ErrOut, " (Ctrl-C to stop)")
	prof, err := tracer.Sample(ctx, t, opts)
	if f.IO.ErrIsTerminal {
		fmt.Fprint(f.IO.ErrOut, "\r\033[K")
	}
	if err != nil {
		if errors.Is(err, tracer.ErrCannotHalt) {
			return fmt.Errorf("%w: %s cannot be stopped at will, so it cannot be sampled by suspending it (sample a kernel through a GDB stub: --target gdb://HOST:PORT)", err, t.Describe())
		}
		if prof == nil || len(prof.Samples) == 0 {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "machtrace: sampling stopped early: %v\n", err)
	}
	if o.OnCPU {
		if o.StopAll {
			return flagErrorf("--on-cpu needs the lazy stop to see which threads are blocked: drop --stop-all")
		}
		all := len(prof.Samples)
		prof = prof.OnCPU()
		fmt.Fprintf(f.IO.ErrOut, "--on-cpu: %d of %d thread samples were not blocked in a system call\n", len(prof.Samples), all)
	}
	sym := s.Symbolizer()
	if len(prof.Images) > 0 {
		sym.SetImages(prof.Images)
	}
	if prof.TargetExited {
		fmt.Fprintf(f.IO.ErrOut, "machtrace: the target exited while sampling (%v)\n", prof.ExitErr)
	}
	writeSampleReport(f.IO.Out, prof, tracer.Summarize(prof, sym), o)
	if o.Output != "" {
		if err := writeFile(o.Output, func(w io.Writer) error { return tracer.PprofProfile(prof, sym).Write(w) }); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "wrote pprof profile to %s (go tool pprof -top %s)\n", o.Output, o.Output)
	}
	if o.Folded != "" {
		if err := writeFile(o.Folded, func(w io.Writer) error { return tracer.WriteFolded(w, prof, sym, o.Threads) }); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "wrote folded stacks to %s\n", o.Folded)
	}
	if o.Flame != "" {
		if err := writeFile(o.Flame, func(w io.Writer) error { return tracer.WriteFlameGraph(w, prof, sym, o.Threads) }); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "wrote flame graph to %s\n", o.Flame)
	}
	return nil
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func writeSampleReport(w io.Writer, p *tracer.Profile, r *tracer.Report, o *SampleOptions) {
	st := p.Stats
	fmt.Fprintf(w, "%s: %d thread samples in %d ticks over %.2fs (%.0f Hz of %g requested; %d late, %d missed); target stopped %.2f%% of the time (longest stop %v); %s\n",
		p.Target, st.Samples, st.Taken, st.Wall.Seconds(), st.AchievedRate(), st.Rate, st.Late, st.Missed,
		100*st.StoppedFraction(), st.MaxStop.Round(time.Microsecond), p.Ended)
	if r.Samples == 0 {
		fmt.Fprintln(w, "no samples")
		return
	}
	if st.Asleep > 0 {
		fmt.Fprintf(w, "%d thread samples (%s) were of threads still asleep where last sampled, read without waking them (--stop-all to wake every thread)\n", st.Asleep, pct(st.Asleep, st.Samples))
	}
	fmt.Fprintf(w, "%d of %d samples (%s) resolved to a symbol\n\n", r.Resolved, r.Samples, pct(r.Resolved, r.Samples))
	var tab = newTable(w, right, right, right, right, left, left)
	if r.Unwound {
		tab.Header("SELF%", "SELF", "TOTAL%", "TOTAL", "FUNCTION", "IMAGE")
	} else {
		tab = newTable(w, right, right, left, left)
		tab.Header("SELF%", "SELF", "FUNCTION", "IMAGE")
	}
	for i, fs := range r.Funcs {
		if i >= o.Top {
			break
		}
		if fs.Self == 0 && !r.Unwound {
			break
		}
		if r.Unwound {
			tab.Append([]string{pct(fs.Self, r.Samples), fmt.Sprint(fs.Self), pct(fs.Total, r.Samples), fmt.Sprint(fs.Total), fs.Name, fs.Image})
		} else {
			tab.Append([]string{pct(fs.Self, r.Samples), fmt.Sprint(fs.Self), fs.Name, fs.Image})
		}
	}
	tab.Render()
	if !o.Threads {
		fmt.Fprintf(w, "\n%d threads sampled (--threads for the per-thread table)\n", len(r.Threads))
		return
	}
	fmt.Fprintln(w)
	tt := newTable(w, right, left, right, right, left)
	tt.Header("TID", "NAME", "SAMPLES", "SHARE", "HOTTEST (SELF)")
	for _, ts := range r.Threads {
		tt.Append([]string{fmt.Sprint(ts.ID), ts.Name, fmt.Sprint(ts.Samples), pct(ts.Samples, r.Samples), strings.TrimSpace(fmt.Sprintf("%s (%s)", ts.Top, pct(ts.TopSelf, ts.Samples)))})
	}
	tt.Render()
}
