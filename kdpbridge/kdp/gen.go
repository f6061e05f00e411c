//go:build ignore

// gen.go writes zpackets.go: the per-type boilerplate of every packet type
// (Kind, MarshalBinary, AppendBinary, UnmarshalBinary, the bodies of
// header-only and error-only packets) and the request-code registry.
// Regenerate with: go generate ./kdpbridge/kdp
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
)

// shape of a packet body.
const (
	custom  = iota // hand-written in packets.go
	empty          // header only
	errOnly        // header + error u32
	errData        // header + error u32 + data to the end (field named by data)
)

type pkt struct {
	typ   string
	req   string
	reply bool
	shape int
	data  string // errData: field name
	doc   string
}

var pkts = []pkt{
	{"ConnectRequest", "Connect", false, custom, "", ""},
	{"ConnectReply", "Connect", true, errOnly, "", "ConnectReply answers a CONNECT (XNU: ErrAlreadyConnected when another session is up; LLDB ignores the code)."},
	{"DisconnectRequest", "Disconnect", false, empty, "", "DisconnectRequest ends the session; the target resumes (x86_64 XNU) or waits for a new debugger."},
	{"DisconnectReply", "Disconnect", true, empty, "", "DisconnectReply answers a DISCONNECT."},
	{"HostInfoRequest", "HostInfo", false, empty, "", "HostInfoRequest asks for the CPU mask and type."},
	{"HostInfoReply", "HostInfo", true, custom, "", ""},
	{"VersionRequest", "Version", false, empty, "", "VersionRequest asks for the protocol version and features."},
	{"VersionReply", "Version", true, custom, "", ""},
	{"MaxBytesRequest", "MaxBytes", false, empty, "", "MaxBytesRequest asks for the largest memory transfer the stub accepts."},
	{"MaxBytesReply", "MaxBytes", true, custom, "", ""},
	{"ReadMemRequest", "ReadMem", false, custom, "", ""},
	{"ReadMemReply", "ReadMem", true, errData, "Data", "ReadMemReply carries the bytes read; XNU returns what it could read with ErrBadAccess when that is less than asked."},
	{"WriteMemRequest", "WriteMem", false, custom, "", ""},
	{"WriteMemReply", "WriteMem", true, errOnly, "", "WriteMemReply answers a WRITEMEM."},
	{"ReadRegsRequest", "ReadRegs", false, custom, "", ""},
	{"ReadRegsReply", "ReadRegs", true, errData, "State", "ReadRegsReply carries a thread-state image of the requested flavor (empty with ErrBadFlavor)."},
	{"WriteRegsRequest", "WriteRegs", false, custom, "", ""},
	{"WriteRegsReply", "WriteRegs", true, errOnly, "", "WriteRegsReply answers a WRITEREGS."},
	{"LoadRequest", "Load", false, custom, "", ""},
	{"LoadReply", "Load", true, errOnly, "", "LoadReply answers a LOAD (XNU never sends one)."},
	{"ImagePathRequest", "ImagePath", false, empty, "", "ImagePathRequest asks for the kernel image path (XNU drops it)."},
	{"ImagePathReply", "ImagePath", true, custom, "", ""},
	{"SuspendRequest", "Suspend", false, empty, "", "SuspendRequest asks to halt; a no-op since the stub only listens while halted."},
	{"SuspendReply", "Suspend", true, empty, "", "SuspendReply answers a SUSPEND."},
	{"ResumeCPUsRequest", "ResumeCPUs", false, custom, "", ""},
	{"ResumeCPUsReply", "ResumeCPUs", true, empty, "", "ResumeCPUsReply answers a RESUMECPUS; the target runs once it is sent."},
	{"ExceptionNotification", "Exception", false, custom, "", ""},
	{"ExceptionAck", "Exception", true, empty, "", ""},
	{"TerminationNotification", "Termination", false, custom, "", ""},
	{"TerminationAck", "Termination", true, empty, "", ""},
	{"BreakpointSetRequest", "BreakpointSet", false, custom, "", ""},
	{"BreakpointSetReply", "BreakpointSet", true, errOnly, "", "BreakpointSetReply answers a BREAKPOINT_SET."},
	{"BreakpointRemoveRequest", "BreakpointRemove", false, custom, "", ""},
	{"BreakpointRemoveReply", "BreakpointRemove", true, errOnly, "", "BreakpointRemoveReply answers a BREAKPOINT_REMOVE."},
	{"RegionsRequest", "Regions", false, empty, "", "RegionsRequest asks for the accessible memory regions."},
	{"RegionsReply", "Regions", true, custom, "", ""},
	{"ReattachRequest", "Reattach", false, custom, "", ""},
	{"ReattachReply", "Reattach", true, empty, "", "ReattachReply answers a REATTACH; a client adopts its key and restarts its sequence at 0."},
	{"HostRebootRequest", "HostReboot", false, empty, "", "HostRebootRequest reboots the target; XNU sends no reply."},
	{"HostRebootReply", "HostReboot", true, empty, "", "HostRebootReply is the header-only reply layout of HOSTREBOOT (XNU never sends it)."},
	{"ReadMem64Request", "ReadMem64", false, custom, "", ""},
	{"ReadMem64Reply", "ReadMem64", true, errData, "Data", "ReadMem64Reply carries the bytes read; XNU returns what it could read with ErrBadAccess when that is less than asked."},
	{"WriteMem64Request", "WriteMem64", false, custom, "", ""},
	{"WriteMem64Reply", "WriteMem64", true, errOnly, "", "WriteMem64Reply answers a WRITEMEM64."},
	{"Breakpoint64SetRequest", "Breakpoint64Set", false, custom, "", ""},
	{"Breakpoint64SetReply", "Breakpoint64Set", true, errOnly, "", "Breakpoint64SetReply answers a BREAKPOINT64_SET."},
	{"Breakpoint64RemoveRequest", "Breakpoint64Remove", false, custom, "", ""},
	{"Breakpoint64RemoveReply", "Breakpoint64Remove", true, errOnly, "", "Breakpoint64RemoveReply answers a BREAKPOINT64_REMOVE."},
	{"KernelVersionRequest", "KernelVersion", false, empty, "", "KernelVersionRequest asks for the kernel version string."},
	{"KernelVersionReply", "KernelVersion", true, custom, "", ""},
	{"ReadPhysMem64Request", "ReadPhysMem64", false, custom, "", ""},
	{"ReadPhysMem64Reply", "ReadPhysMem64", true, errData, "Data", "ReadPhysMem64Reply carries the physical memory read."},
	{"WritePhysMem64Request", "WritePhysMem64", false, custom, "", ""},
	{"WritePhysMem64Reply", "WritePhysMem64", true, errOnly, "", "WritePhysMem64Reply answers a WRITEPHYSMEM64."},
	{"ReadIOPortRequest", "ReadIOPort", false, custom, "", ""},
	{"ReadIOPortReply", "ReadIOPort", true, errData, "Data", "ReadIOPortReply carries the value read (only when Error is 0)."},
	{"WriteIOPortRequest", "WriteIOPort", false, custom, "", ""},
	{"WriteIOPortReply", "WriteIOPort", true, errOnly, "", "WriteIOPortReply answers a WRITEIOPORT."},
	{"ReadMSR64Request", "ReadMSR64", false, custom, "", ""},
	{"ReadMSR64Reply", "ReadMSR64", true, custom, "", ""},
	{"WriteMSR64Request", "WriteMSR64", false, custom, "", ""},
	{"WriteMSR64Reply", "WriteMSR64", true, errOnly, "", "WriteMSR64Reply answers a WRITEMSR64."},
	{"DumpInfoRequest", "DumpInfo", false, custom, "", ""},
	{"DumpInfoReply", "DumpInfo", true, custom, "", ""},
}

func main() {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run gen.go; DO NOT EDIT.\n\npackage kdp\n\n")
	for _, p := range pkts {
		if p.doc != "" {
			fmt.Fprintf(&b, "// %s\n", p.doc)
			switch p.shape {
			case empty:
				fmt.Fprintf(&b, "type %s struct {\n\tHeader\n}\n\n", p.typ)
			case errOnly:
				fmt.Fprintf(&b, "type %s struct {\n\tHeader\n\tError ErrorCode\n}\n\n", p.typ)
			case errData:
				fmt.Fprintf(&b, "type %s struct {\n\tHeader\n\tError ErrorCode\n\t%s []byte\n}\n\n", p.typ, p.data)
			}
		}
		fmt.Fprintf(&b, "// Kind returns %s, %v.\nfunc (*%s) Kind() (Request, bool) { return %s, %v }\n\n", p.req, p.reply, p.typ, p.req, p.reply)
		fmt.Fprintf(&b, "// MarshalBinary encodes the packet, filling Request, Reply and Len.\nfunc (p *%s) MarshalBinary() ([]byte, error) { return marshalPacket(p) }\n\n", p.typ)
		fmt.Fprintf(&b, "// AppendBinary appends the encoded packet to b, filling Request, Reply and Len.\nfunc (p *%s) AppendBinary(b []byte) ([]byte, error) { return appendPacket(b, p) }\n\n", p.typ)
		fmt.Fprintf(&b, "// UnmarshalBinary decodes datagram b into p.\nfunc (p *%s) UnmarshalBinary(b []byte) error { return unmarshalPacket(p, b) }\n\n", p.typ)
		fmt.Fprintf(&b, "func (p *%s) decodeBody(b []byte) error {\n\tr := reader{b: b, off: HeaderLen}\n\tp.decode(&r)\n\treturn r.err\n}\n\n", p.typ)
		switch p.shape {
		case empty:
			fmt.Fprintf(&b, "func (p *%s) appendBody(b []byte) ([]byte, error) { return b, nil }\n\nfunc (p *%s) decode(r *reader) {}\n\n", p.typ, p.typ)
		case errOnly:
			fmt.Fprintf(&b, "// Status returns the reply's error code.\nfunc (p *%s) Status() ErrorCode { return p.Error }\n\n", p.typ)
			fmt.Fprintf(&b, "func (p *%s) appendBody(b []byte) ([]byte, error) { return wire.AppendUint32(b, uint32(p.Error)), nil }\n\n", p.typ)
			fmt.Fprintf(&b, "func (p *%s) decode(r *reader) { p.Error = ErrorCode(r.u32()) }\n\n", p.typ)
		case errData:
			fmt.Fprintf(&b, "// Status returns the reply's error code.\nfunc (p *%s) Status() ErrorCode { return p.Error }\n\n", p.typ)
			fmt.Fprintf(&b, "func (p *%s) appendBody(b []byte) ([]byte, error) {\n\tb = wire.AppendUint32(b, uint32(p.Error))\n\treturn append(b, p.%s...), nil\n}\n\n", p.typ, p.data)
			fmt.Fprintf(&b, "func (p *%s) decode(r *reader) {\n\tp.Error = ErrorCode(r.u32())\n\tp.%s = r.rest(p.%s)\n}\n\n", p.typ, p.data, p.data)
		}
	}
	b.WriteString("// registry maps a request code and reply bit to a constructor.\nvar registry = [NumRequests][2]func() Packet{\n")
	for i := 0; i < len(pkts); i += 2 {
		fmt.Fprintf(&b, "\t%s: {func() Packet { return new(%s) }, func() Packet { return new(%s) }},\n", pkts[i].req, pkts[i].typ, pkts[i+1].typ)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("zpackets.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
}
