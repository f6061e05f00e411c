// Command machtrace is a process and kernel tracer built on the Mach model:
// it suspends a target, reads every thread's registers, walks stacks and
// resumes it, and from that loop samples, dumps registers and reads memory.
package main

import (
	"os"

	"github.com/machtrace/machtrace/internal/cli"
)

func main() { os.Exit(int(cli.Main())) }
