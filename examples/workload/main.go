// Command workload is a CPU-bound program with known hot spots, for trying
// machtrace and for its README:
//
//	machtrace sample -F 999 -d 3s --threads -- go run ./examples/workload
//
// Its main goroutine parses records, sorts batches and hashes blocks (in that
// order of cost); a second goroutine sleeps in a timer loop and a third waits
// on a channel, so the profile shows idle threads too (--on-cpu hides them).
package main

import (
	"flag"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"time"
)

var sink int

// parseRecords parses decimal fields, like a log or CSV reader.
//
//go:noinline
func parseRecords(rounds int) int {
	n := 0
	for i := 0; i < rounds; i++ {
		for _, f := range []string{"12345", "678", "90123456", "42", "7"} {
			v, _ := strconv.Atoi(f)
			n += v
		}
	}
	return n
}

// hashBlocks checksums a buffer, like a storage engine verifying pages.
//
//go:noinline
func hashBlocks(rounds int, buf []byte) int {
	n := 0
	for i := 0; i < rounds; i++ {
		n += int(crc32.ChecksumIEEE(buf))
	}
	return n
}

// sortBatch sorts a small batch, like a merge step.
//
//go:noinline
func sortBatch(rounds int, batch []int) int {
	for i := 0; i < rounds; i++ {
		for j := range batch {
			batch[j] = (j * 7919) % len(batch)
		}
		slices.Sort(batch)
	}
	return batch[0]
}

func main() {
	seconds := flag.Float64("t", 10, "seconds to run")
	flag.Parse()
	buf := make([]byte, 4096)
	batch := make([]int, 256)
	go func() { // a thread asleep in a timer loop
		for {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	idle := make(chan int)
	go func() { <-idle }() // a goroutine blocked forever
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	for time.Now().Before(end) {
		sink += parseRecords(6000)
		sink += hashBlocks(700, buf)
		sink += sortBatch(40, batch)
	}
	fmt.Println("workload done", sink%10)
}
