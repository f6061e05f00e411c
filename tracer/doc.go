// Package tracer is machtrace's OS-neutral model of a traced task and everything
// built on it.
//
// A Target is a task in the Mach sense: one address space and the threads that
// run in it. It can be stopped and resumed as a whole, its threads' register
// state can be read and written by flavor, its memory read and written, and its
// loaded images listed. Backends (Linux ptrace, the macOS Mach layer, KDP,
// GDB-remote stubs) implement the smaller Backend contract; NewTarget wraps a
// Backend into a Target that counts suspensions and serialises calls.
//
// Above the model sit the parts shared by every backend: the sampler (the
// suspend-sample-resume loop), the frame-pointer unwinder, the symbolizer and
// the aggregation of samples into tables and profiles.
package tracer
