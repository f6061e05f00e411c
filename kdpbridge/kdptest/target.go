package kdptest

import (
	"bytes"
	"sync"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// Target is a toy halted x86_64 kernel for a fake peer: mapped memory,
// register images by flavor, and a stub-managed breakpoint table with XNU's
// error codes. Its Handle method is a Handler.
type Target struct {
	mu            sync.Mutex
	Version       uint32 // VERSION reply; 12 by default
	Feature       uint32 // kdp.FeatureBreakpoints by default
	CPUMask       uint32
	CPUType       uint32
	CPUSubtype    uint32
	KernelVersion string

	regions []region
	regs    map[uint32][]byte
	bps     map[uint64]byte
}

type region struct {
	base uint64
	data []byte
}

// NewTarget returns a target with XNU x86_64 defaults and an all-zero
// x86_THREAD_STATE64 image; no memory is mapped.
func NewTarget() *Target {
	return &Target{
		Version: kdp.ProtocolVersion, Feature: kdp.FeatureBreakpoints,
		CPUMask: 1, CPUType: kdp.CPUTypeX86_64, CPUSubtype: 3,
		KernelVersion: "EFI kdptest fake kernel",
		regs: map[uint32][]byte{
			kdp.X86ThreadState64: make([]byte, kdp.X86ThreadState64Size),
			kdp.X86FloatState64:  make([]byte, kdp.X86FloatState64Size),
		},
		bps: map[uint64]byte{},
	}
}

// Map maps a copy of data at base.
func (t *Target) Map(base uint64, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regions = append(t.regions, region{base, bytes.Clone(data)})
}

// SetRegs sets the image of a flavor.
func (t *Target) SetRegs(flavor uint32, img []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regs[flavor] = bytes.Clone(img)
}

// Regs returns a copy of the image of a flavor.
func (t *Target) Regs(flavor uint32) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.regs[flavor])
}

// Mem returns a copy of the readable bytes at addr, at most n.
func (t *Target) Mem(addr uint64, n int) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read(addr, n)
}

// Breakpoints returns the number of planted breakpoints.
func (t *Target) Breakpoints() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bps)
}

func (t *Target) at(a uint64) (*byte, bool) {
	for i := range t.regions {
		r := &t.regions[i]
		if a >= r.base && a-r.base < uint64(len(r.data)) {
			return &r.data[a-r.base], true
		}
	}
	return nil, false
}

// read returns the readable prefix of [addr, addr+n), crossing adjacent
// regions.
func (t *Target) read(addr uint64, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		a := addr + uint64(len(out))
		found := false
		for _, r := range t.regions {
			if a >= r.base && a-r.base < uint64(len(r.data)) {
				out = append(out, r.data[a-r.base:][:min(n-len(out), len(r.data)-int(a-r.base))]...)
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return out
}

func (t *Target) write(addr uint64, data []byte) kdp.ErrorCode {
	for i, c := range data {
		p, ok := t.at(addr + uint64(i))
		if !ok {
			return kdp.ErrBadAccess
		}
		*p = c
	}
	return kdp.NoError
}

func (t *Target) readMem(addr uint64, n uint32) (kdp.ErrorCode, []byte) {
	if n > kdp.MaxData {
		return kdp.ErrBadNBytes, nil
	}
	b := t.read(addr, int(n))
	if len(b) < int(n) {
		return kdp.ErrBadAccess, b
	}
	return kdp.NoError, b
}

func (t *Target) writeMem(addr uint64, data []byte) kdp.ErrorCode {
	if len(data) > kdp.MaxData {
		return kdp.ErrBadNBytes
	}
	return t.write(addr, data)
}

func (t *Target) setBP(addr uint64) kdp.ErrorCode {
	p, ok := t.at(addr)
	switch {
	case !ok:
		return kdp.ErrBadAccess
	case *p == 0xCC:
		return kdp.ErrBreakpointAlreadySet
	case len(t.bps) >= 100:
		return kdp.ErrMaxBreakpoints
	}
	t.bps[addr] = *p
	*p = 0xCC
	return kdp.NoError
}

func (t *Target) removeBP(addr uint64) kdp.ErrorCode {
	orig, ok := t.bps[addr]
	if !ok {
		return kdp.ErrBreakpointNotFound
	}
	delete(t.bps, addr)
	if p, ok := t.at(addr); ok {
		*p = orig
	}
	return kdp.NoError
}

// Handle answers a request as a halted XNU x86_64 stub would.
func (t *Target) Handle(req kdp.Packet) (kdp.Packet, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch p := req.(type) {
	case *kdp.DisconnectRequest:
		for a := range t.bps {
			t.removeBP(a)
		}
		return &kdp.DisconnectReply{}, nil
	case *kdp.HostInfoRequest:
		return &kdp.HostInfoReply{CPUMask: t.CPUMask, CPUType: t.CPUType, CPUSubtype: t.CPUSubtype}, nil
	case *kdp.VersionRequest:
		return &kdp.VersionReply{Version: t.Version, Feature: t.Feature}, nil
	case *kdp.MaxBytesRequest:
		return &kdp.MaxBytesReply{MaxBytes: kdp.MaxData}, nil
	case *kdp.KernelVersionRequest:
		return &kdp.KernelVersionReply{Version: t.KernelVersion}, nil
	case *kdp.ReadMemRequest:
		code, b := t.readMem(uint64(p.Address), p.NBytes)
		return &kdp.ReadMemReply{Error: code, Data: b}, nil
	case *kdp.ReadMem64Request:
		code, b := t.readMem(p.Address, p.NBytes)
		return &kdp.ReadMem64Reply{Error: code, Data: b}, nil
	case *kdp.ReadPhysMem64Request:
		code, b := t.readMem(p.Address, p.NBytes)
		return &kdp.ReadPhysMem64Reply{Error: code, Data: b}, nil
	case *kdp.WriteMemRequest:
		return &kdp.WriteMemReply{Error: t.writeMem(uint64(p.Address), p.Data)}, nil
	case *kdp.WriteMem64Request:
		return &kdp.WriteMem64Reply{Error: t.writeMem(p.Address, p.Data)}, nil
	case *kdp.WritePhysMem64Request:
		return &kdp.WritePhysMem64Reply{Error: t.writeMem(p.Address, p.Data)}, nil
	case *kdp.ReadRegsRequest:
		img, ok := t.regs[p.Flavor]
		if !ok {
			return &kdp.ReadRegsReply{Error: kdp.ErrBadFlavor}, nil
		}
		return &kdp.ReadRegsReply{State: bytes.Clone(img)}, nil
	case *kdp.WriteRegsRequest:
		img, ok := t.regs[p.Flavor]
		if !ok {
			return &kdp.WriteRegsReply{Error: kdp.ErrBadFlavor}, nil
		}
		copy(img, p.State)
		return &kdp.WriteRegsReply{}, nil
	case *kdp.SuspendRequest:
		return &kdp.SuspendReply{}, nil
	case *kdp.ResumeCPUsRequest:
		return &kdp.ResumeCPUsReply{}, nil
	case *kdp.BreakpointSetRequest:
		return &kdp.BreakpointSetReply{Error: t.setBP(uint64(p.Address))}, nil
	case *kdp.BreakpointRemoveRequest:
		return &kdp.BreakpointRemoveReply{Error: t.removeBP(uint64(p.Address))}, nil
	case *kdp.Breakpoint64SetRequest:
		return &kdp.Breakpoint64SetReply{Error: t.setBP(p.Address)}, nil
	case *kdp.Breakpoint64RemoveRequest:
		return &kdp.Breakpoint64RemoveReply{Error: t.removeBP(p.Address)}, nil
	case *kdp.RegionsRequest:
		return &kdp.RegionsReply{Regions: []kdp.Region{{Address: 0, NBytes: 0xFFFFFFFF, Protection: 7}}}, nil
	case *kdp.ReadIOPortRequest:
		return &kdp.ReadIOPortReply{Error: kdp.ErrBadAccess}, nil
	case *kdp.WriteIOPortRequest:
		return &kdp.WriteIOPortReply{Error: kdp.ErrBadAccess}, nil
	case *kdp.ReadMSR64Request:
		return &kdp.ReadMSR64Reply{Error: kdp.ErrBadAccess}, nil
	case *kdp.WriteMSR64Request:
		return &kdp.WriteMSR64Reply{Error: kdp.ErrBadAccess}, nil
	case *kdp.DumpInfoRequest:
		return &kdp.DumpInfoReply{Name: p.Name, DestIP: p.DestIP, RouterIP: p.RouterIP, Port: p.Port, Type: kdp.DumpDisable}, nil
	}
	return nil, nil // LOAD, IMAGEPATH, notifications: dropped, as XNU does
}
