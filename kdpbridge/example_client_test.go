package kdpbridge_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/machtrace/machtrace/kdpbridge"
	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// Connect to a halted macOS kernel (boot-args debug=0x... with KDP enabled),
// read the PC, let it run until the next trap, and detach.
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kdpbridge.Connect(ctx, "192.168.64.2", kdpbridge.ClientOptions{})
	if err != nil {
		log.Fatal(err) // e.g. "... peer not answering at 192.168.64.2:41139 after 3 tries ..."
	}
	defer c.Disconnect(ctx)
	fmt.Println(c.Info().KernelVersion)

	flavor, _ := kdp.GeneralFlavor(c.Info().CPUType)
	img, err := c.ReadRegs(ctx, kdpbridge.LLDBThreadCPU, flavor)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes of thread state\n", len(img))

	if err := c.Resume(ctx); err != nil {
		log.Fatal(err)
	}
	stop, err := c.WaitException(ctx) // KDP cannot interrupt: wait for a trap
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exception %d code %d\n", stop.Info[0].Exception, stop.Info[0].Code)
}
