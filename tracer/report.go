package tracer

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// FuncStat is one function's share of a profile.
type FuncStat struct {
	Name  string // symbol, or "image+0xoff" / "0x..." when unknown
	Image string // base name of the image
	Self  int    // samples with the function at the top of the stack
	Total int    // samples with the function anywhere on the stack
}

// ThreadStat is one thread's share of a profile.
type ThreadStat struct {
	ID      ThreadID
	Name    string
	Samples int
	Top     string // the thread's hottest function (self)
	TopSelf int
}

// Report aggregates a profile by function and by thread.
type Report struct {
	Samples  int
	Resolved int // samples whose PC resolved to a symbol
	Unwound  bool
	Funcs    []FuncStat   // by Self, then Total, descending
	Threads  []ThreadStat // by Samples, descending
}

// frameAddr is the address to symbolize for stack entry i: return addresses
// point after the call, so look up the byte before.
func frameAddr(stack []uint64, i int) uint64 {
	if i > 0 && stack[i] > 0 {
		return stack[i] - 1
	}
	return stack[i]
}

// frameName names an address for aggregation.
func frameName(loc CodeLocation) string {
	if loc.Func != "" {
		return loc.Func
	}
	if loc.Image != "" {
		return fmt.Sprintf("%s+%#x", loc.ImageName(), loc.ImageAddr)
	}
	return fmt.Sprintf("%#x", loc.Addr)
}

// Summarize aggregates p by function (self and total) and by thread.
func Summarize(p *Profile, sym *Symbolizer) *Report {
	r := &Report{Samples: len(p.Samples)}
	funcs := map[string]*FuncStat{}
	type threadAcc struct {
		n    int
		self map[string]int
	}
	threads := map[ThreadID]*threadAcc{}
	seen := map[string]bool{}
	for _, s := range p.Samples {
		if len(s.Stack) > 1 {
			r.Unwound = true
		}
		clear(seen)
		for i := range s.Stack {
			loc := sym.Lookup(frameAddr(s.Stack, i))
			name := frameName(loc)
			f := funcs[name]
			if f == nil {
				f = &FuncStat{Name: name, Image: loc.ImageName()}
				funcs[name] = f
			}
			if i == 0 {
				f.Self++
				if loc.Known() {
					r.Resolved++
				}
				ta := threads[s.Thread]
				if ta == nil {
					ta = &threadAcc{self: map[string]int{}}
					threads[s.Thread] = ta
				}
				ta.n++
				ta.self[name]++
			}
			if !seen[name] {
				seen[name] = true
				f.Total++
			}
		}
	}
	for _, f := range funcs {
		r.Funcs = append(r.Funcs, *f)
	}
	slices.SortFunc(r.Funcs, func(a, b FuncStat) int {
		return cmp.Or(cmp.Compare(b.Self, a.Self), cmp.Compare(b.Total, a.Total), strings.Compare(a.Name, b.Name))
	})
	for id, ta := range threads {
		ts := ThreadStat{ID: id, Name: p.ThreadNames[id], Samples: ta.n}
		for name, n := range ta.self {
			if n > ts.TopSelf || n == ts.TopSelf && name < ts.Top {
				ts.Top, ts.TopSelf = name, n
			}
		}
		r.Threads = append(r.Threads, ts)
	}
	slices.SortFunc(r.Threads, func(a, b ThreadStat) int {
		return cmp.Or(cmp.Compare(b.Samples, a.Samples), cmp.Compare(a.ID, b.ID))
	})
	return r
}

// WriteFolded writes the profile as folded stacks ("root;caller;leaf count"
// per line), the input of flamegraph.pl, inferno and speedscope.
func WriteFolded(w io.Writer, p *Profile, sym *Symbolizer, perThread bool) error {
	counts := map[string]int{}
	var frames []string
	for _, s := range p.Samples {
		frames = frames[:0]
		if perThread {
			name := p.ThreadNames[s.Thread]
			frames = append(frames, fmt.Sprintf("%s[%d]", cmp.Or(name, "thread"), s.Thread))
		}
		for i := len(s.Stack) - 1; i >= 0; i-- {
			frames = append(frames, strings.ReplaceAll(frameName(sym.Lookup(frameAddr(s.Stack, i))), ";", ":"))
		}
		counts[strings.Join(frames, ";")]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "%s %d\n", k, counts[k]); err != nil {
			return err
		}
	}
	return nil
}

// PprofProfile converts the profile to pprof's format: one sample per thread
// sample with a "thread" label, locations by address with their symbol and
// line, mappings from the image list. `go tool pprof` and speedscope open it.
func PprofProfile(p *Profile, sym *Symbolizer) *profile.Profile {
	period := int64(0)
	if p.Stats.Rate > 0 {
		period = int64(1e9 / p.Stats.Rate)
	}
	out := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "wall", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "wall", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     p.Start.UnixNano(),
		DurationNanos: int64(p.Stats.Wall),
		Comments:      []string{"machtrace sample of " + p.Target},
	}
	mappings := map[string]*profile.Mapping{}
	for _, im := range p.Images {
		if im.Path == "" || !strings.Contains(im.Perms, "x") {
			continue
		}
		m := &profile.Mapping{ID: uint64(len(out.Mapping) + 1), Start: im.Start, Limit: im.End, Offset: im.Offset, File: im.Path, HasFunctions: true}
		out.Mapping = append(out.Mapping, m)
		mappings[im.Path] = m
	}
	funcs := map[string]*profile.Function{}
	locs := map[uint64]*profile.Location{}
	location := func(addr, lookup uint64) *profile.Location {
		if l := locs[addr]; l != nil {
			return l
		}
		loc := sym.LookupLine(lookup)
		l := &profile.Location{ID: uint64(len(out.Location) + 1), Address: addr}
		for _, m := range out.Mapping {
			if addr >= m.Start && addr < m.Limit {
				l.Mapping = m
				break
			}
		}
		name := frameName(loc)
		fn := funcs[name]
		if fn == nil {
			fn = &profile.Function{ID: uint64(len(out.Function) + 1), Name: name, SystemName: name, Filename: loc.File}
			funcs[name] = fn
			out.Function = append(out.Function, fn)
		}
		l.Line = []profile.Line{{Function: fn, Line: int64(loc.Line)}}
		locs[addr] = l
		out.Location = append(out.Location, l)
		return l
	}
	for _, s := range p.Samples {
		ps := &profile.Sample{Value: []int64{1, period}, NumLabel: map[string][]int64{"thread": {int64(s.Thread)}}}
		if name := p.ThreadNames[s.Thread]; name != "" {
			ps.Label = map[string][]string{"thread_name": {name}}
		}
		for i, a := range s.Stack {
			ps.Location = append(ps.Location, location(a, frameAddr(s.Stack, i)))
		}
		out.Sample = append(out.Sample, ps)
	}
	return out
}
