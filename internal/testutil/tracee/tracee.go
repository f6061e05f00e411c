// Package tracee holds the programs machtrace's tests trace. A test binary
// re-executes itself as the tracee: TestMain calls RunIfRequested, which runs
// the program named in the environment and exits, so the same fixtures work
// wherever the test binary runs (Linux here, macOS for the Mach backend).
package tracee

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// envName selects the tracee program; envArgs passes its arguments.
const (
	envName = "MACHTRACE_TRACEE"
	envArgs = "MACHTRACE_TRACEE_ARGS"
)

// Program names.
const (
	Split        = "split"         // HotA 75% / HotB 25% of the time; arg: seconds (default 60)
	KnownRegs    = "known-regs"    // loads KnownRegisters and spins until the control register is set; exits with its value
	NamedThreads = "named-threads" // 8 threads named mt-worker-0..7, then sleeps
	Churn        = "churn"         // creates and destroys OS threads as fast as it can; arg: seconds
	SpinThreads  = "spin-threads"  // N busy threads; args: N seconds
	ExitAfter    = "exit-after"    // spins, then exits 0 after the given milliseconds
	Sleep        = "sleep"         // sleeps; arg: seconds
	SignalEcho   = "signal-echo"   // prints "GOT <signal>" for each SIGUSR1 or SIGTERM, and spins
)

// Ready is printed on stdout by programs once they have set themselves up.
const Ready = "TRACEE-READY"

// SpinReturned starts the line KnownRegs prints with the control register's
// value when a tracer has set it (the exit status says the same, but a tracer
// in the parent process may have reaped it).
const SpinReturned = "SPIN-RETURNED"

// Env returns the environment that makes the test binary run program with
// args.
func Env(program string, args ...string) []string {
	return append(os.Environ(), envName+"="+program, envArgs+"="+strings.Join(args, " "))
}

// Argv returns the command that re-executes the test binary (which must call
// RunIfRequested from TestMain).
func Argv() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe, "-test.run=^$"}
}

// RunIfRequested runs the tracee program named in the environment, if any,
// and exits. Call it first thing in TestMain.
func RunIfRequested() {
	name := os.Getenv(envName)
	if name == "" {
		return
	}
	args := strings.Fields(os.Getenv(envArgs))
	arg := func(i int, def float64) float64 {
		if i < len(args) {
			if v, err := strconv.ParseFloat(args[i], 64); err == nil {
				return v
			}
		}
		return def
	}
	seconds := func(i int, def float64) time.Duration { return time.Duration(arg(i, def) * float64(time.Second)) }
	switch name {
	case Split:
		fmt.Println(Ready)
		runSplit(seconds(0, 60))
	case KnownRegs:
		debug.SetGCPercent(-1) // the spinning thread cannot be preempted for a GC
		runtime.LockOSThread()
		fmt.Println(Ready)
		v := SpinWithKnownRegisters()
		fmt.Printf("%s %d\n", SpinReturned, v)
		os.Exit(int(v))
	case NamedThreads:
		runNamedThreads()
	case Churn:
		fmt.Println(Ready)
		runChurn(seconds(0, 60))
	case SpinThreads:
		fmt.Println(Ready)
		runSpinThreads(int(arg(0, 4)), seconds(1, 60))
	case ExitAfter:
		fmt.Println(Ready)
		d := time.Duration(arg(0, 500) * float64(time.Millisecond))
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			HotB(1000)
		}
	case Sleep:
		fmt.Println(Ready)
		time.Sleep(seconds(0, 60))
	case SignalEcho:
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, echoSignals...)
		go func() {
			for {
				HotA(5000)
			}
		}()
		fmt.Println(Ready)
		for s := range sigs {
			fmt.Println("GOT", s)
		}
	default:
		fmt.Fprintf(os.Stderr, "tracee: unknown program %q\n", name)
		os.Exit(3)
	}
	os.Exit(0)
}

// sink keeps the spin loops from being optimised away.
var sink uint64

// HotA and HotB burn CPU: n rounds of integer mixing.
//
//go:noinline
func HotA(n int) uint64 {
	x := sink | 1
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	sink = x
	return x
}

//go:noinline
func HotB(n int) uint64 {
	x := sink | 3
	for i := 0; i < n; i++ {
		x ^= x << 11
		x ^= x >> 9
		x ^= x << 15
	}
	sink = x
	return x
}

// SplitShareA is the true share of CPU time runSplit spends in HotA.
const SplitShareA = 0.75

// runSplit calls HotA for three rounds of work and HotB for one, so CPU time
// splits 75/25: the two functions run the same instructions per round. The
// split is by work, not by the clock, so time the tracer holds the process
// stopped does not bias it.
func runSplit(total time.Duration) {
	const round = 20000
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		for i := 0; i < 20; i++ {
			HotA(3 * round)
			HotB(round)
		}
	}
}

func runNamedThreads() {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread keeps its name
			if err := setThreadName(fmt.Sprintf("mt-worker-%d", i)); err != nil {
				fmt.Fprintln(os.Stderr, "tracee:", err)
			}
			wg.Done()
			select {}
		}()
	}
	wg.Wait()
	fmt.Println(Ready)
	time.Sleep(time.Hour)
}

// runChurn starts goroutines locked to their OS thread that exit while
// locked: the Go runtime then destroys the thread, so OS threads are created
// and destroyed continuously.
func runChurn(total time.Duration) {
	end := time.Now().Add(total)
	sem := make(chan struct{}, 4)
	for time.Now().Before(end) {
		sem <- struct{}{}
		go func() {
			runtime.LockOSThread()
			HotA(500)
			<-sem
		}()
	}
}

func runSpinThreads(n int, total time.Duration) {
	end := time.Now().Add(total)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for time.Now().Before(end) {
				HotA(5000)
			}
		}()
	}
	wg.Wait()
}
