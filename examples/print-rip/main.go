// Command print-rip is the seed program of machtrace on its public API: start
// a child, suspend it, read the PC and a few registers of its first thread,
// resume it. The original forked a child and called task_for_pid,
// task_suspend, task_threads and thread_get_state; tracer.Launch,
// Target.Suspend, Target.Threads and Target.ThreadState are the same steps,
// on Mach or on ptrace.
//
//	go run ./examples/print-rip            # traces `sleep 4`
//	go run ./examples/print-rip -- CMD ARGS
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/machtrace/machtrace/tracer"
)

func main() {
	argv := []string{"sleep", "4"}
	if len(os.Args) > 2 && os.Args[1] == "--" {
		argv = os.Args[2:]
	}
	if err := run(argv); err != nil {
		fmt.Fprintln(os.Stderr, "print-rip:", err)
		os.Exit(1)
	}
}

func run(argv []string) error {
	// The child starts stopped before its first instruction.
	t, err := tracer.Launch(argv, tracer.LaunchOptions{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return err
	}
	defer t.Close() // detach: the child runs on
	if err := t.Resume(); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond)
		if err := printFirstThread(t); err != nil {
			return err
		}
	}
	return nil
}

func printFirstThread(t tracer.Target) error {
	if err := t.Suspend(); err != nil {
		return err
	}
	defer t.Resume()
	threads, err := t.Threads()
	if err != nil {
		return err
	}
	if len(threads) == 0 {
		return fmt.Errorf("%s has no threads", t.Describe())
	}
	regs, err := t.ThreadState(threads[0].ID, tracer.FlavorGeneral)
	if err != nil {
		return err
	}
	names := []string{"rax", "rcx", "rdx"}
	if regs.Arch() == tracer.ArchARM64 {
		names = []string{"x0", "x1", "x2"}
	}
	fmt.Printf("%s thread %d: PC = %#x SP = %#x", t.Describe(), threads[0].ID, regs.PC(), regs.SP())
	for _, n := range names {
		v, _ := regs.Get(n)
		fmt.Printf(" %s = %#x", n, v)
	}
	fmt.Println()
	return nil
}
