package tracer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SampleOptions configure Sample.
type SampleOptions struct {
	// Rate is the sampling frequency in Hz (default 100).
	Rate float64
	// Duration bounds the run; 0 samples until ctx is done or the target
	// exits.
	Duration time.Duration
	// Unwind walks frame pointers through memory reads, so that each sample
	// holds a call stack rather than the PC alone.
	Unwind bool
	// MaxDepth bounds an unwound stack (default 128 frames).
	MaxDepth int
	// MinRunGap is the least time the target runs between two samples. A
	// tick that would cut it shorter is skipped and counted as missed. Kernel
	// targets need it so the guest makes progress.
	MinRunGap time.Duration
	// Threads restricts sampling to these threads (nil: every thread).
	Threads []ThreadID
	// StopAll stops every thread at every tick. By default a backend that
	// can (LazyStopper) leaves asleep the threads still blocked where they
	// were last sampled and reuses their registers.
	StopAll bool
	// Realtime runs the sampling thread at a real-time priority where the
	// backend can (Realtimer; root on Linux), so the target's busy threads
	// cannot starve it. Sample fails if it cannot be had.
	Realtime bool
	// Progress, when set, is called about every ProgressEvery with the
	// statistics so far. It runs inside the sampling loop: keep it short.
	Progress      func(SampleStats)
	ProgressEvery time.Duration
}

// ThreadSample is one thread's state at one tick.
type ThreadSample struct {
	Offset time.Duration // since the start of sampling
	Thread ThreadID
	// Stack holds the PC first, then return addresses, innermost first.
	// Without unwinding it holds the PC alone.
	Stack []uint64
	// InSyscall is true when the thread was blocked in a system call (off
	// CPU), where the backend can tell (LazyStopper).
	InSyscall bool
}

// SampleStats is the sampler's account of itself.
type SampleStats struct {
	Rate     float64       // requested rate, Hz
	Wall     time.Duration // from the first tick to the end
	Ticks    int           // ticks due on the schedule during Wall
	Taken    int           // ticks at which the target was sampled
	Late     int           // taken, but more than a fifth of a period after schedule
	Missed   int           // skipped: the previous tick overran or MinRunGap forbade it
	Samples  int           // thread samples recorded (Taken x threads, less errors)
	Vanished int           // threads that disappeared between listing and reading
	// Asleep counts thread samples taken without stopping the thread: it
	// was still blocked in the kernel where it was last sampled.
	Asleep int
	// Stopped is the total time the target was held suspended.
	Stopped time.Duration
	// MaxStop is the longest single suspension.
	MaxStop time.Duration
}

// StoppedFraction is the share of wall time the target spent suspended.
func (s SampleStats) StoppedFraction() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return float64(s.Stopped) / float64(s.Wall)
}

// AchievedRate is the rate at which ticks were actually taken.
func (s SampleStats) AchievedRate() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return float64(s.Taken) / s.Wall.Seconds()
}

// Profile is the result of a sampling run.
type Profile struct {
	Target  string
	Arch    Arch
	Start   time.Time
	Samples []ThreadSample
	Stats   SampleStats
	// ThreadNames holds the names of the threads seen, where known.
	ThreadNames map[ThreadID]string
	// Images is the target's image list at the end of the run (for
	// symbolization after the target is gone).
	Images []Image
	// Ended says why sampling stopped ("duration reached", "interrupted",
	// "target exited: ...").
	Ended string
	// TargetExited is true when the run ended because the target exited;
	// ExitErr then says how (with the exit status where known).
	TargetExited bool
	ExitErr      error
}

// The reasons a sampling run ends.
const (
	endDuration    = "duration reached"
	endInterrupted = "interrupted"
)

// Sample runs the suspend-sample-resume loop on t: at each tick it suspends
// the target, reads the general state of every thread (and, with Unwind,
// walks its frame pointers), and resumes it. Ticks lie on a fixed grid from
// the start, so the rate does not drift; a tick that cannot be honoured is
// counted as missed, never silently dropped.
//
// Sample returns the profile collected so far when ctx is cancelled or the
// target exits; neither is an error. The target is left running.
func Sample(ctx context.Context, t Target, opts SampleOptions) (*Profile, error) {
	if opts.Rate == 0 {
		opts.Rate = 100
	}
	if opts.Rate < 0 || opts.Rate > 100000 {
		return nil, fmt.Errorf("sample rate %g Hz: want 0 < rate <= 100000", opts.Rate)
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 128
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 250 * time.Millisecond
	}
	if t.Suspended() {
		return nil, errors.New("sample: the target is suspended; resume it first")
	}
	s := &sampler{t: t, b: t.Backend(), opts: opts, names: map[ThreadID]string{}}
	s.prof = &Profile{Target: t.Describe(), Arch: t.Arch(), ThreadNames: s.names}
	s.refreshNames()
	var err error
	if opts.Realtime {
		rt, ok := s.b.(Realtimer)
		if !ok {
			return nil, fmt.Errorf("real-time sampling: %w for %s", errors.ErrUnsupported, t.Describe())
		}
		if err := rt.SetRealtime(true); err != nil {
			return nil, err
		}
		defer rt.SetRealtime(false)
	}
	if tb, ok := s.b.(ThreadBound); ok {
		// ptrace: every call must come from one OS thread; run the loop there.
		if rerr := tb.Run(func() { err = s.loop(ctx) }); rerr != nil && err == nil {
			err = rerr
		}
	} else {
		err = s.loop(ctx)
	}
	if !s.prof.TargetExited {
		s.refreshNames()
		if images, ierr := t.Images(); ierr == nil {
			s.prof.Images = images
		}
	}
	if s.images != nil && s.prof.Images == nil {
		s.prof.Images = s.images
	}
	return s.prof, err
}

type sampler struct {
	t      Target
	b      Backend
	opts   SampleOptions
	prof   *Profile
	names  map[ThreadID]string
	images []Image // the image list as last read, kept for a target that exits
	strip  func(uint64) uint64
	lazy   LazyStopper // set while the backend's lazy stop is on
	buf    [16]byte
}

func (s *sampler) refreshNames() {
	threads, err := s.t.Threads()
	if err != nil {
		return
	}
	for _, th := range threads {
		if th.Name != "" {
			s.names[th.ID] = th.Name
		}
	}
}

func (s *sampler) loop(ctx context.Context) error {
	if ps, ok := s.b.(PointerStripper); ok {
		s.strip = ps.StripPointer
	}
	sleep := sleepFor
	if sl, ok := s.b.(Sleeper); ok {
		sleep = sl.Sleep
	}
	if images, err := s.t.Images(); err == nil {
		s.images = images
	}
	if ls, ok := s.b.(LazyStopper); ok && !s.opts.StopAll {
		if err := ls.SetLazy(true); err == nil {
			s.lazy = ls
			defer ls.SetLazy(false)
		}
	}
	period := time.Duration(float64(time.Second) / s.opts.Rate)
	lateAfter := period / 5
	st := &s.prof.Stats
	st.Rate = s.opts.Rate
	start := time.Now()
	s.prof.Start = start
	next := start
	lastProgress := start
	seen := map[ThreadID]bool{}
	defer func() { st.Wall = time.Since(start) }()
	for {
		if err := ctx.Err(); err != nil {
			s.prof.Ended = endInterrupted
			return nil
		}
		now := time.Now()
		if s.opts.Duration > 0 && now.Sub(start) >= s.opts.Duration {
			s.prof.Ended = endDuration
			return nil
		}
		if wait := next.Sub(now); wait > 0 {
			if s.opts.Duration > 0 {
				if left := s.opts.Duration - now.Sub(start); left < wait {
					sleep(left)
					continue
				}
			}
			sleep(wait)
			now = time.Now()
		}
		st.Ticks++
		if now.Sub(next) > lateAfter {
			st.Late++
		}
		stopAt := time.Now()
		ended, err := s.sampleOnce(stopAt.Sub(start), seen)
		resumed := time.Now()
		if ended {
			st.Ticks-- // this tick was not taken
			return err
		}
		st.Taken++
		stop := resumed.Sub(stopAt)
		st.Stopped += stop
		st.MaxStop = max(st.MaxStop, stop)
		// Next tick on the grid; skip (and count) ticks already past or
		// closer than MinRunGap to the end of this suspension.
		next = next.Add(period)
		earliest := resumed.Add(s.opts.MinRunGap)
		if s.opts.MinRunGap == 0 {
			earliest = resumed
		}
		if next.Before(earliest) {
			skip := int(earliest.Sub(next)/period) + 1
			st.Missed += skip
			st.Ticks += skip
			next = next.Add(time.Duration(skip) * period)
		}
		if s.opts.Progress != nil && resumed.Sub(lastProgress) >= s.opts.ProgressEvery {
			lastProgress = resumed
			snap := *st
			snap.Wall = resumed.Sub(start)
			s.opts.Progress(snap)
		}
	}
}

// sampleOnce suspends the target, records every thread and resumes it. It
// reports ended=true when the run must stop (the target exited, or an error).
func (s *sampler) sampleOnce(offset time.Duration, seen map[ThreadID]bool) (ended bool, err error) {
	st := &s.prof.Stats
	if err := s.t.Suspend(); err != nil {
		return true, s.endOn(err)
	}
	tids, err := s.threadIDs()
	if err != nil {
		_ = s.t.Resume()
		return true, s.endOn(err)
	}
	newThreads := false
	for _, tid := range tids {
		if !s.wanted(tid) {
			continue
		}
		regs, err := s.t.ThreadState(tid, FlavorGeneral)
		if err != nil {
			if errors.Is(err, ErrNoThread) {
				st.Vanished++
				continue
			}
			if errors.Is(err, ErrExited) {
				_ = s.t.Resume()
				return true, s.endOn(err)
			}
			_ = s.t.Resume()
			return true, fmt.Errorf("sample thread %d: %w", tid, err)
		}
		if !seen[tid] {
			seen[tid] = true
			newThreads = true
		}
		sample := ThreadSample{Offset: offset, Thread: tid, Stack: s.stack(regs)}
		if s.lazy != nil {
			sample.InSyscall = s.lazy.InSyscall(tid)
		}
		s.prof.Samples = append(s.prof.Samples, sample)
		st.Samples++
	}
	if s.lazy != nil {
		_, parked := s.lazy.LastStop()
		st.Asleep += parked
	}
	if err := s.t.Resume(); err != nil {
		return true, s.endOn(err)
	}
	if newThreads {
		// Names of new threads, read while the target runs. Rare except
		// for programs that churn threads, where names still matter.
		s.refreshNames()
	}
	return false, nil
}

// endOn turns the target's exit into a normal end of the run.
func (s *sampler) endOn(err error) error {
	if errors.Is(err, ErrExited) {
		s.prof.Ended = "target exited"
		s.prof.ExitErr = err
		s.prof.TargetExited = true
		return nil
	}
	return err
}

func (s *sampler) threadIDs() ([]ThreadID, error) {
	if l, ok := s.b.(ThreadLister); ok {
		return l.ThreadIDs()
	}
	threads, err := s.t.Threads()
	if err != nil {
		return nil, err
	}
	ids := make([]ThreadID, len(threads))
	for i, th := range threads {
		ids[i] = th.ID
	}
	return ids, nil
}

func (s *sampler) wanted(tid ThreadID) bool {
	if s.opts.Threads == nil {
		return true
	}
	for _, w := range s.opts.Threads {
		if w == tid {
			return true
		}
	}
	return false
}

// stack returns the PC and, when unwinding, the return addresses found by
// walking the frame-pointer chain.
func (s *sampler) stack(regs *Registers) []uint64 {
	pc := regs.PC()
	if !s.opts.Unwind {
		return []uint64{pc}
	}
	return UnwindFramePointers(regs, s.readWord, s.opts.MaxDepth, s.strip)
}

func (s *sampler) readWord(addr uint64) (uint64, uint64, bool) {
	n, err := s.t.ReadMemory(addr, s.buf[:16])
	if err != nil || n != 16 {
		return 0, 0, false
	}
	return le64(s.buf[0:8]), le64(s.buf[8:16]), true
}

// PointerStripper is implemented by backends whose return addresses may carry
// authentication bits (arm64e on macOS); StripPointer removes them.
type PointerStripper interface {
	StripPointer(addr uint64) uint64
}

// OnCPU returns a copy of the profile without the samples of threads blocked
// in a system call: an on-CPU profile, comparable to perf's.
func (p *Profile) OnCPU() *Profile {
	q := *p
	q.Samples = nil
	for _, s := range p.Samples {
		if !s.InSyscall {
			q.Samples = append(q.Samples, s)
		}
	}
	return &q
}
