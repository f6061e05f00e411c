package kdp

import "strconv"

// Request is a KDP request number (kdp_req_t), the low 7 bits of the first
// header byte.
type Request uint8

// The request numbers of protocol version 12.
const (
	Connect            Request = 0  // KDP_CONNECT
	Disconnect         Request = 1  // KDP_DISCONNECT
	HostInfo           Request = 2  // KDP_HOSTINFO
	Version            Request = 3  // KDP_VERSION
	MaxBytes           Request = 4  // KDP_MAXBYTES
	ReadMem            Request = 5  // KDP_READMEM (32-bit address)
	WriteMem           Request = 6  // KDP_WRITEMEM (32-bit address)
	ReadRegs           Request = 7  // KDP_READREGS
	WriteRegs          Request = 8  // KDP_WRITEREGS
	Load               Request = 9  // KDP_LOAD (not served by XNU)
	ImagePath          Request = 10 // KDP_IMAGEPATH (not served by XNU)
	Suspend            Request = 11 // KDP_SUSPEND
	ResumeCPUs         Request = 12 // KDP_RESUMECPUS
	Exception          Request = 13 // KDP_EXCEPTION: a notification from the stub
	Termination        Request = 14 // KDP_TERMINATION: a notification (never sent by XNU)
	BreakpointSet      Request = 15 // KDP_BREAKPOINT_SET (32-bit address)
	BreakpointRemove   Request = 16 // KDP_BREAKPOINT_REMOVE (32-bit address)
	Regions            Request = 17 // KDP_REGIONS
	Reattach           Request = 18 // KDP_REATTACH
	HostReboot         Request = 19 // KDP_HOSTREBOOT (no reply: the host reboots)
	ReadMem64          Request = 20 // KDP_READMEM64
	WriteMem64         Request = 21 // KDP_WRITEMEM64
	Breakpoint64Set    Request = 22 // KDP_BREAKPOINT64_SET
	Breakpoint64Remove Request = 23 // KDP_BREAKPOINT64_REMOVE
	KernelVersion      Request = 24 // KDP_KERNELVERSION
	ReadPhysMem64      Request = 25 // KDP_READPHYSMEM64
	WritePhysMem64     Request = 26 // KDP_WRITEPHYSMEM64
	ReadIOPort         Request = 27 // KDP_READIOPORT
	WriteIOPort        Request = 28 // KDP_WRITEIOPORT
	ReadMSR64          Request = 29 // KDP_READMSR64
	WriteMSR64         Request = 30 // KDP_WRITEMSR64
	DumpInfo           Request = 31 // KDP_DUMPINFO

	// NumRequests is the number of request codes (KDP_INVALID_REQUEST);
	// codes from NumRequests to 127 are invalid.
	NumRequests Request = 32
)

var requestNames = [NumRequests]string{
	"CONNECT", "DISCONNECT", "HOSTINFO", "VERSION", "MAXBYTES", "READMEM",
	"WRITEMEM", "READREGS", "WRITEREGS", "LOAD", "IMAGEPATH", "SUSPEND",
	"RESUMECPUS", "EXCEPTION", "TERMINATION", "BREAKPOINT_SET",
	"BREAKPOINT_REMOVE", "REGIONS", "REATTACH", "HOSTREBOOT", "READMEM64",
	"WRITEMEM64", "BREAKPOINT64_SET", "BREAKPOINT64_REMOVE", "KERNELVERSION",
	"READPHYSMEM64", "WRITEPHYSMEM64", "READIOPORT", "WRITEIOPORT",
	"READMSR64", "WRITEMSR64", "DUMPINFO",
}

// String returns the request's name without the KDP_ prefix ("READMEM64"),
// or "Request(N)" for an invalid code.
func (r Request) String() string {
	if r < NumRequests {
		return requestNames[r]
	}
	return "Request(" + strconv.Itoa(int(r)) + ")"
}

// Valid reports whether r is one of the 32 request codes.
func (r Request) Valid() bool { return r < NumRequests }
