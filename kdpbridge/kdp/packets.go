package kdp

//go:generate go run gen.go

// The generated file zpackets.go holds, for every packet type, Kind,
// MarshalBinary, AppendBinary and UnmarshalBinary, the types and bodies of the
// header-only and error-only packets, and the registry. This file holds the
// packets with other bodies.

// Greeting is the greeting LLDB sends in CONNECT.
const Greeting = "Greetings from LLDB..."

// ConnectRequest opens a session. The stub sends replies to ReplyPort and
// exception notifications to ExcPort (both big-endian on the wire); LLDB
// announces its one local port as both.
type ConnectRequest struct {
	Header
	ReplyPort uint16
	ExcPort   uint16
	Greeting  string // NUL-terminated on the wire; ignored by the stub
}

func (p *ConnectRequest) appendBody(b []byte) ([]byte, error) {
	b = portOrder.AppendUint16(b, p.ReplyPort)
	b = portOrder.AppendUint16(b, p.ExcPort)
	return appendCString(b, p.Greeting), nil
}

func (p *ConnectRequest) decode(r *reader) {
	p.ReplyPort = r.port()
	p.ExcPort = r.port()
	p.Greeting = r.cstring()
}

// HostInfoReply describes the target's CPUs.
type HostInfoReply struct {
	Header
	CPUMask    uint32 // bit i set if CPU i exists; LLDB resumes with this mask
	CPUType    uint32 // Mach-O cpu_type_t: CPUTypeX86_64 or CPUTypeARM64
	CPUSubtype uint32 // Mach-O cpu_subtype_t
}

func (p *HostInfoReply) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.CPUMask)
	b = wire.AppendUint32(b, p.CPUType)
	return wire.AppendUint32(b, p.CPUSubtype), nil
}

func (p *HostInfoReply) decode(r *reader) {
	p.CPUMask = r.u32()
	p.CPUType = r.u32()
	p.CPUSubtype = r.u32()
}

// VersionReply reports the protocol version (12 for XNU; 11 or more means
// the 64-bit requests are available) and features (FeatureBreakpoints).
type VersionReply struct {
	Header
	Version uint32
	Feature uint32
	Pad0    uint32 // stale bytes in XNU's replies
	Pad1    uint32
}

func (p *VersionReply) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.Version)
	b = wire.AppendUint32(b, p.Feature)
	b = wire.AppendUint32(b, p.Pad0)
	return wire.AppendUint32(b, p.Pad1), nil
}

func (p *VersionReply) decode(r *reader) {
	p.Version = r.u32()
	p.Feature = r.u32()
	p.Pad0 = r.u32()
	p.Pad1 = r.u32()
}

// MaxBytesReply reports the largest memory transfer the stub accepts
// (MaxData for XNU).
type MaxBytesReply struct {
	Header
	MaxBytes uint32
}

func (p *MaxBytesReply) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint32(b, p.MaxBytes), nil
}

func (p *MaxBytesReply) decode(r *reader) { p.MaxBytes = r.u32() }

// ReadMemRequest reads NBytes (at most MaxData) at a 32-bit address.
type ReadMemRequest struct {
	Header
	Address uint32
	NBytes  uint32
}

func (p *ReadMemRequest) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.Address)
	return wire.AppendUint32(b, p.NBytes), nil
}

func (p *ReadMemRequest) decode(r *reader) {
	p.Address = r.u32()
	p.NBytes = r.u32()
}

// WriteMemRequest writes Data at a 32-bit address; the byte count on the wire
// is len(Data).
type WriteMemRequest struct {
	Header
	Address uint32
	Data    []byte
}

func (p *WriteMemRequest) appendBody(b []byte) ([]byte, error) {
	n, err := u32len(len(p.Data))
	if err != nil {
		return b, err
	}
	b = wire.AppendUint32(b, p.Address)
	b = wire.AppendUint32(b, n)
	return append(b, p.Data...), nil
}

func (p *WriteMemRequest) decode(r *reader) {
	p.Address = r.u32()
	p.Data = r.bytesN(p.Data, int(r.u32()))
}

// ReadRegsRequest reads the thread state of a flavor. LLDB sends CPU 1 (its
// one kernel thread); XNU ignores the field.
type ReadRegsRequest struct {
	Header
	CPU    uint32
	Flavor uint32
}

func (p *ReadRegsRequest) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.CPU)
	return wire.AppendUint32(b, p.Flavor), nil
}

func (p *ReadRegsRequest) decode(r *reader) {
	p.CPU = r.u32()
	p.Flavor = r.u32()
}

// WriteRegsRequest writes a thread-state image of a flavor.
type WriteRegsRequest struct {
	Header
	CPU    uint32
	Flavor uint32
	State  []byte // the image, to the end of the datagram
}

func (p *WriteRegsRequest) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.CPU)
	b = wire.AppendUint32(b, p.Flavor)
	return append(b, p.State...), nil
}

func (p *WriteRegsRequest) decode(r *reader) {
	p.CPU = r.u32()
	p.Flavor = r.u32()
	p.State = r.rest(p.State)
}

// LoadRequest asks the stub to load a file (never served by XNU).
type LoadRequest struct {
	Header
	FileArgs string // NUL-terminated on the wire
}

func (p *LoadRequest) appendBody(b []byte) ([]byte, error) {
	return appendCString(b, p.FileArgs), nil
}

func (p *LoadRequest) decode(r *reader) { p.FileArgs = r.cstring() }

// ImagePathReply carries the kernel image path (never sent by XNU).
type ImagePathReply struct {
	Header
	Path string // NUL-terminated on the wire
}

func (p *ImagePathReply) appendBody(b []byte) ([]byte, error) {
	return appendCString(b, p.Path), nil
}

func (p *ImagePathReply) decode(r *reader) { p.Path = r.cstring() }

// ResumeCPUsRequest resumes the target. XNU ignores the mask; LLDB sends the
// HOSTINFO CPU mask. After the reply the target is deaf until it traps and
// sends an ExceptionNotification.
type ResumeCPUsRequest struct {
	Header
	CPUMask uint32
}

func (p *ResumeCPUsRequest) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint32(b, p.CPUMask), nil
}

func (p *ResumeCPUsRequest) decode(r *reader) { p.CPUMask = r.u32() }

// ExcInfo is one CPU's exception in a notification (kdp_exc_info_t).
type ExcInfo struct {
	CPU       uint32 // always 0 from XNU
	Exception uint32 // Mach exception type: 1 EXC_BAD_ACCESS ... 6 EXC_BREAKPOINT
	Code      uint32
	Subcode   uint32
}

// ExcInfoLen is the wire size of one ExcInfo.
const ExcInfoLen = 16

// Mach exception types found in ExcInfo.Exception.
const (
	ExcBadAccess      = 1 // EXC_BAD_ACCESS
	ExcBadInstruction = 2 // EXC_BAD_INSTRUCTION
	ExcArithmetic     = 3 // EXC_ARITHMETIC
	ExcEmulation      = 4 // EXC_EMULATION
	ExcSoftware       = 5 // EXC_SOFTWARE
	ExcBreakpoint     = 6 // EXC_BREAKPOINT
)

// ExceptionNotification (KDP_EXCEPTION, a request travelling from the stub to
// the client's exception port) reports that the target trapped. The client
// must answer with an ExceptionAck of the same Seq. XNU sends one entry, seq
// counting from 0 per session and key 0; arm64 XNU declares 16 more bytes
// than the entry (decoding ignores them).
type ExceptionNotification struct {
	Header
	Info []ExcInfo
}

func (p *ExceptionNotification) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, uint32(len(p.Info)))
	for _, e := range p.Info {
		b = wire.AppendUint32(b, e.CPU)
		b = wire.AppendUint32(b, e.Exception)
		b = wire.AppendUint32(b, e.Code)
		b = wire.AppendUint32(b, e.Subcode)
	}
	return b, nil
}

func (p *ExceptionNotification) decode(r *reader) {
	n := r.u32()
	p.Info = p.Info[:0]
	if uint64(n)*ExcInfoLen > uint64(r.remaining()) {
		r.err = ErrShortPacket
		return
	}
	for range n {
		p.Info = append(p.Info, ExcInfo{CPU: r.u32(), Exception: r.u32(), Code: r.u32(), Subcode: r.u32()})
	}
}

// ExceptionAck acknowledges an ExceptionNotification: an 8-byte reply with
// the notification's Seq (and, as LLDB does, its Key and Len). A Len of 0 is
// encoded as 8; any other Len is kept, and decoding does not check it.
type ExceptionAck struct {
	Header
}

func (*ExceptionAck) keepsLen() {}

// Termination codes of a TerminationNotification.
const (
	TermFault       = 0 // KDP_FAULT
	TermExit        = 1 // KDP_EXIT
	TermPowerOff    = 2 // KDP_POWEROFF
	TermReboot      = 3 // KDP_REBOOT
	TermCommandMode = 4 // KDP_COMMAND_MODE
)

// TerminationNotification (KDP_TERMINATION) reports that the target ended;
// defined by the protocol, never sent by XNU. A client acks it like an
// exception.
type TerminationNotification struct {
	Header
	TermCode uint32
	ExitCode uint32
}

func (p *TerminationNotification) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.TermCode)
	return wire.AppendUint32(b, p.ExitCode), nil
}

func (p *TerminationNotification) decode(r *reader) {
	p.TermCode = r.u32()
	p.ExitCode = r.u32()
}

// TerminationAck acknowledges a TerminationNotification; Len is handled as in
// ExceptionAck.
type TerminationAck struct {
	Header
}

func (*TerminationAck) keepsLen() {}

// BreakpointSetRequest asks the stub to plant a breakpoint at a 32-bit address.
type BreakpointSetRequest struct {
	Header
	Address uint32
}

func (p *BreakpointSetRequest) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint32(b, p.Address), nil
}

func (p *BreakpointSetRequest) decode(r *reader) { p.Address = r.u32() }

// BreakpointRemoveRequest removes a breakpoint at a 32-bit address.
type BreakpointRemoveRequest struct {
	Header
	Address uint32
}

func (p *BreakpointRemoveRequest) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint32(b, p.Address), nil
}

func (p *BreakpointRemoveRequest) decode(r *reader) { p.Address = r.u32() }

// Region is one entry of a REGIONS reply.
type Region struct {
	Address    uint32
	NBytes     uint32
	Protection uint32 // VM_PROT_* bits
}

// RegionLen is the wire size of one Region.
const RegionLen = 12

// RegionsReply lists accessible memory; XNU answers one region
// {0, 0xFFFFFFFF, 7}.
type RegionsReply struct {
	Header
	Regions []Region
}

func (p *RegionsReply) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, uint32(len(p.Regions)))
	for _, g := range p.Regions {
		b = wire.AppendUint32(b, g.Address)
		b = wire.AppendUint32(b, g.NBytes)
		b = wire.AppendUint32(b, g.Protection)
	}
	return b, nil
}

func (p *RegionsReply) decode(r *reader) {
	n := r.u32()
	p.Regions = p.Regions[:0]
	if uint64(n)*RegionLen > uint64(r.remaining()) {
		r.err = ErrShortPacket
		return
	}
	for range n {
		p.Regions = append(p.Regions, Region{Address: r.u32(), NBytes: r.u32(), Protection: r.u32()})
	}
}

// ReattachRequest tears down any session and makes the stub wait for a
// CONNECT. Its reply goes to ReplyPort (big-endian on the wire).
type ReattachRequest struct {
	Header
	ReplyPort uint16
}

func (p *ReattachRequest) appendBody(b []byte) ([]byte, error) {
	return portOrder.AppendUint16(b, p.ReplyPort), nil
}

func (p *ReattachRequest) decode(r *reader) { p.ReplyPort = r.port() }

// ReadMem64Request reads NBytes (at most MaxData) at a 64-bit address.
type ReadMem64Request struct {
	Header
	Address uint64
	NBytes  uint32
}

func (p *ReadMem64Request) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint64(b, p.Address)
	return wire.AppendUint32(b, p.NBytes), nil
}

func (p *ReadMem64Request) decode(r *reader) {
	p.Address = r.u64()
	p.NBytes = r.u32()
}

// WriteMem64Request writes Data at a 64-bit address; the byte count on the
// wire is len(Data).
type WriteMem64Request struct {
	Header
	Address uint64
	Data    []byte
}

func (p *WriteMem64Request) appendBody(b []byte) ([]byte, error) {
	n, err := u32len(len(p.Data))
	if err != nil {
		return b, err
	}
	b = wire.AppendUint64(b, p.Address)
	b = wire.AppendUint32(b, n)
	return append(b, p.Data...), nil
}

func (p *WriteMem64Request) decode(r *reader) {
	p.Address = r.u64()
	p.Data = r.bytesN(p.Data, int(r.u32()))
}

// Breakpoint64SetRequest asks the stub to plant a breakpoint at a 64-bit
// address.
type Breakpoint64SetRequest struct {
	Header
	Address uint64
}

func (p *Breakpoint64SetRequest) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint64(b, p.Address), nil
}

func (p *Breakpoint64SetRequest) decode(r *reader) { p.Address = r.u64() }

// Breakpoint64RemoveRequest removes a breakpoint at a 64-bit address.
type Breakpoint64RemoveRequest struct {
	Header
	Address uint64
}

func (p *Breakpoint64RemoveRequest) appendBody(b []byte) ([]byte, error) {
	return wire.AppendUint64(b, p.Address), nil
}

func (p *Breakpoint64RemoveRequest) decode(r *reader) { p.Address = r.u64() }

// KernelVersionReply carries the kernel version string ("Darwin Kernel
// Version ...; UUID=...; stext=0x..."), NUL-terminated on the wire.
type KernelVersionReply struct {
	Header
	Version string
}

func (p *KernelVersionReply) appendBody(b []byte) ([]byte, error) {
	return appendCString(b, p.Version), nil
}

func (p *KernelVersionReply) decode(r *reader) { p.Version = r.cstring() }

// ReadPhysMem64Request reads physical memory on a logical CPU (CurrentLCPU
// for the stub's own).
type ReadPhysMem64Request struct {
	Header
	Address uint64
	NBytes  uint32
	LCPU    uint16
}

func (p *ReadPhysMem64Request) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint64(b, p.Address)
	b = wire.AppendUint32(b, p.NBytes)
	return wire.AppendUint16(b, p.LCPU), nil
}

func (p *ReadPhysMem64Request) decode(r *reader) {
	p.Address = r.u64()
	p.NBytes = r.u32()
	p.LCPU = r.u16()
}

// WritePhysMem64Request writes physical memory; the byte count on the wire is
// len(Data).
type WritePhysMem64Request struct {
	Header
	Address uint64
	LCPU    uint16
	Data    []byte
}

func (p *WritePhysMem64Request) appendBody(b []byte) ([]byte, error) {
	n, err := u32len(len(p.Data))
	if err != nil {
		return b, err
	}
	b = wire.AppendUint64(b, p.Address)
	b = wire.AppendUint32(b, n)
	b = wire.AppendUint16(b, p.LCPU)
	return append(b, p.Data...), nil
}

func (p *WritePhysMem64Request) decode(r *reader) {
	p.Address = r.u64()
	n := r.u32()
	p.LCPU = r.u16()
	p.Data = r.bytesN(p.Data, int(n))
}

// ReadIOPortRequest reads NBytes (1, 2 or 4) from an x86 I/O port.
type ReadIOPortRequest struct {
	Header
	LCPU   uint16
	Port   uint16
	NBytes uint16
}

func (p *ReadIOPortRequest) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint16(b, p.LCPU)
	b = wire.AppendUint16(b, p.Port)
	return wire.AppendUint16(b, p.NBytes), nil
}

func (p *ReadIOPortRequest) decode(r *reader) {
	p.LCPU = r.u16()
	p.Port = r.u16()
	p.NBytes = r.u16()
}

// WriteIOPortRequest writes Data (1, 2 or 4 bytes) to an x86 I/O port.
type WriteIOPortRequest struct {
	Header
	LCPU uint16
	Port uint16
	Data []byte
}

func (p *WriteIOPortRequest) appendBody(b []byte) ([]byte, error) {
	if len(p.Data) > 0xFFFF {
		return b, ErrTooLong
	}
	b = wire.AppendUint16(b, p.LCPU)
	b = wire.AppendUint16(b, p.Port)
	b = wire.AppendUint16(b, uint16(len(p.Data)))
	return append(b, p.Data...), nil
}

func (p *WriteIOPortRequest) decode(r *reader) {
	p.LCPU = r.u16()
	p.Port = r.u16()
	p.Data = r.bytesN(p.Data, int(r.u16()))
}

// ReadMSR64Request reads a model-specific register on a logical CPU.
type ReadMSR64Request struct {
	Header
	MSR  uint32
	LCPU uint16
}

func (p *ReadMSR64Request) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.MSR)
	return wire.AppendUint16(b, p.LCPU), nil
}

func (p *ReadMSR64Request) decode(r *reader) {
	p.MSR = r.u32()
	p.LCPU = r.u16()
}

// ReadMSR64Reply carries an MSR value; the value is on the wire only when
// Error is 0.
type ReadMSR64Reply struct {
	Header
	Error ErrorCode
	Value uint64
}

// Status returns the reply's error code.
func (p *ReadMSR64Reply) Status() ErrorCode { return p.Error }

func (p *ReadMSR64Reply) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, uint32(p.Error))
	if p.Error == NoError {
		b = wire.AppendUint64(b, p.Value)
	}
	return b, nil
}

func (p *ReadMSR64Reply) decode(r *reader) {
	p.Error = ErrorCode(r.u32())
	p.Value = 0
	if p.Error == NoError {
		p.Value = r.u64()
	}
}

// WriteMSR64Request writes a model-specific register on a logical CPU.
type WriteMSR64Request struct {
	Header
	MSR   uint32
	LCPU  uint16
	Value uint64
}

func (p *WriteMSR64Request) appendBody(b []byte) ([]byte, error) {
	b = wire.AppendUint32(b, p.MSR)
	b = wire.AppendUint16(b, p.LCPU)
	return wire.AppendUint64(b, p.Value), nil
}

func (p *WriteMSR64Request) decode(r *reader) {
	p.MSR = r.u32()
	p.LCPU = r.u16()
	p.Value = r.u64()
}

// Sizes of the DUMPINFO string fields.
const (
	DumpInfoNameLen = 50
	DumpInfoIPLen   = 16
)

// DumpInfo types (kdp_dumpinfo_t).
const (
	DumpGetInfo   = 0x00
	DumpSetInfo   = 0x01
	DumpCore      = 0x102
	DumpPanicLog  = 0x103
	DumpSystemLog = 0x104
	DumpDisable   = 0x105
	DumpMask      = 0xFFF
	DumpDump      = 0x100
	DumpReboot    = 0x10000000
	DumpNoResume  = 0x20000000
	DumpNoIntr    = 0x40000000
)

// DumpInfoRequest queries or sets the panic core-dump configuration.
type DumpInfoRequest struct {
	Header
	Name     string // at most DumpInfoNameLen bytes
	DestIP   string // at most DumpInfoIPLen bytes
	RouterIP string // at most DumpInfoIPLen bytes
	Port     uint32
	Type     uint32 // Dump* bits
}

func (p *DumpInfoRequest) appendBody(b []byte) ([]byte, error) {
	return appendDumpInfo(b, p.Name, p.DestIP, p.RouterIP, p.Port, p.Type)
}

func (p *DumpInfoRequest) decode(r *reader) {
	p.Name, p.DestIP, p.RouterIP, p.Port, p.Type = decodeDumpInfo(r)
}

// DumpInfoReply answers a DUMPINFO with the same layout as the request.
type DumpInfoReply struct {
	Header
	Name     string
	DestIP   string
	RouterIP string
	Port     uint32
	Type     uint32
}

func (p *DumpInfoReply) appendBody(b []byte) ([]byte, error) {
	return appendDumpInfo(b, p.Name, p.DestIP, p.RouterIP, p.Port, p.Type)
}

func (p *DumpInfoReply) decode(r *reader) {
	p.Name, p.DestIP, p.RouterIP, p.Port, p.Type = decodeDumpInfo(r)
}

func appendDumpInfo(b []byte, name, dest, router string, port, typ uint32) ([]byte, error) {
	b, err := appendFixedString(b, name, DumpInfoNameLen)
	if err != nil {
		return b, err
	}
	if b, err = appendFixedString(b, dest, DumpInfoIPLen); err != nil {
		return b, err
	}
	if b, err = appendFixedString(b, router, DumpInfoIPLen); err != nil {
		return b, err
	}
	b = wire.AppendUint32(b, port)
	return wire.AppendUint32(b, typ), nil
}

func decodeDumpInfo(r *reader) (name, dest, router string, port, typ uint32) {
	name = r.fixedString(DumpInfoNameLen)
	dest = r.fixedString(DumpInfoIPLen)
	router = r.fixedString(DumpInfoIPLen)
	return name, dest, router, r.u32(), r.u32()
}
