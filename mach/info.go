package mach

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// ThreadInfoData is a thread_info result structure with the exact layout of its
// flavor; the cgo layer fills it in place.
type ThreadInfoData interface {
	// InfoFlavor is the thread_flavor_t.
	InfoFlavor() ThreadInfoFlavor
	// Count is the size in 32-bit words.
	Count() uint32
	ptr() unsafe.Pointer
}

// TimeValue is time_value_t.
type TimeValue struct {
	Seconds      int32
	Microseconds int32
}

// Duration converts the value to a time.Duration.
func (t TimeValue) Duration() time.Duration {
	return time.Duration(t.Seconds)*time.Second + time.Duration(t.Microseconds)*time.Microsecond
}

// ThreadBasicInfo is thread_basic_info_data_t (THREAD_BASIC_INFO, 40 bytes).
type ThreadBasicInfo struct {
	UserTime     TimeValue
	SystemTime   TimeValue
	CPUUsage     int32 // scaled by TH_USAGE_SCALE (1000)
	Policy       int32
	RunState     int32 // TH_STATE_*
	Flags        int32 // TH_FLAGS_*
	SuspendCount int32 // user suspend count
	SleepTime    int32
}

// ThreadIdentifierInfo is thread_identifier_info_data_t
// (THREAD_IDENTIFIER_INFO, 24 bytes). ThreadID is the system-wide 64-bit id
// (pthread_threadid_np), the only stable name of a thread.
type ThreadIdentifierInfo struct {
	ThreadID      uint64
	ThreadHandle  uint64 // the pthread_t address in the target
	DispatchQaddr uint64
}

// ThreadExtendedInfo is thread_extended_info_data_t (THREAD_EXTENDED_INFO,
// 112 bytes). Name is empty until the thread calls pthread_setname_np.
type ThreadExtendedInfo struct {
	UserTime    uint64 // nanoseconds
	SystemTime  uint64 // nanoseconds
	CPUUsage    int32
	Policy      int32
	RunState    int32
	Flags       int32
	SleepTime   int32
	CurPri      int32
	Priority    int32
	MaxPriority int32
	RawName     [64]byte // pth_name, NUL-terminated
}

// Name returns pth_name up to its NUL.
func (t *ThreadExtendedInfo) Name() string {
	s := string(t.RawName[:])
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// InfoFlavor implements ThreadInfoData.
func (*ThreadBasicInfo) InfoFlavor() ThreadInfoFlavor { return THREAD_BASIC_INFO }

// Count implements ThreadInfoData.
func (*ThreadBasicInfo) Count() uint32 { return THREAD_BASIC_INFO_COUNT }

func (t *ThreadBasicInfo) ptr() unsafe.Pointer { return unsafe.Pointer(t) }

// InfoFlavor implements ThreadInfoData.
func (*ThreadIdentifierInfo) InfoFlavor() ThreadInfoFlavor { return THREAD_IDENTIFIER_INFO }

// Count implements ThreadInfoData.
func (*ThreadIdentifierInfo) Count() uint32 { return THREAD_IDENTIFIER_INFO_COUNT }

func (t *ThreadIdentifierInfo) ptr() unsafe.Pointer { return unsafe.Pointer(t) }

// InfoFlavor implements ThreadInfoData.
func (*ThreadExtendedInfo) InfoFlavor() ThreadInfoFlavor { return THREAD_EXTENDED_INFO }

// Count implements ThreadInfoData.
func (*ThreadExtendedInfo) Count() uint32 { return THREAD_EXTENDED_INFO_COUNT }

func (t *ThreadExtendedInfo) ptr() unsafe.Pointer { return unsafe.Pointer(t) }

// TaskDyldInfo is task_dyld_info_data_t (TASK_DYLD_INFO): where dyld's
// dyld_all_image_infos lives in the target.
type TaskDyldInfo struct {
	AllImageInfoAddr   uint64
	AllImageInfoSize   uint64
	AllImageInfoFormat int32 // TASK_DYLD_ALL_IMAGE_INFO_64 or _32
}

// ParseTaskDyldInfo decodes the packed 20-byte task_dyld_info (16 bytes, the
// legacy form without the format field, is accepted and read as 64-bit).
func ParseTaskDyldInfo(b []byte) (TaskDyldInfo, error) {
	if len(b) < 16 {
		return TaskDyldInfo{}, fmt.Errorf("task_dyld_info: %w: %d bytes", ErrStateSize, len(b))
	}
	di := TaskDyldInfo{
		AllImageInfoAddr:   ByteOrder.Uint64(b[0:]),
		AllImageInfoSize:   ByteOrder.Uint64(b[8:]),
		AllImageInfoFormat: TASK_DYLD_ALL_IMAGE_INFO_64,
	}
	if len(b) >= 20 {
		di.AllImageInfoFormat = int32(ByteOrder.Uint32(b[16:]))
	}
	return di, nil
}

// RegionBasicInfo64 is vm_region_basic_info_data_64_t (VM_REGION_BASIC_INFO_64).
// The C struct is #pragma pack(4) with a misaligned 64-bit offset, which cgo
// cannot express; the cgo layer hands over raw words and ParseRegionBasicInfo64
// decodes them.
type RegionBasicInfo64 struct {
	Protection     VMProt
	MaxProtection  VMProt
	Inheritance    uint32
	Shared         bool
	Reserved       bool
	Offset         uint64
	Behavior       int32
	UserWiredCount uint16
}

// ParseRegionBasicInfo64 decodes the 36-byte packed struct.
func ParseRegionBasicInfo64(b []byte) (RegionBasicInfo64, error) {
	if len(b) < VM_REGION_BASIC_INFO_COUNT_64*4 {
		return RegionBasicInfo64{}, fmt.Errorf("vm_region_basic_info_64: %w: %d bytes", ErrStateSize, len(b))
	}
	le := binary.LittleEndian
	return RegionBasicInfo64{
		Protection:     VMProt(le.Uint32(b[0:])),
		MaxProtection:  VMProt(le.Uint32(b[4:])),
		Inheritance:    le.Uint32(b[8:]),
		Shared:         le.Uint32(b[12:]) != 0,
		Reserved:       le.Uint32(b[16:]) != 0,
		Offset:         le.Uint64(b[20:]),
		Behavior:       int32(le.Uint32(b[28:])),
		UserWiredCount: le.Uint16(b[32:]),
	}, nil
}

// RegionSubmapInfo64 is the part of vm_region_submap_info_data_64_t
// (mach_vm_region_recurse, 76 bytes packed) that machtrace uses.
type RegionSubmapInfo64 struct {
	Protection    VMProt
	MaxProtection VMProt
	Inheritance   uint32
	Offset        uint64
	UserTag       uint32
	PagesResident uint32
	RefCount      uint32
	ShadowDepth   uint16
	ExternalPager uint8
	ShareMode     uint8
	IsSubmap      bool
	Behavior      int32
	ObjectID      uint32
}

// ParseRegionSubmapInfo64 decodes the 76-byte packed struct.
func ParseRegionSubmapInfo64(b []byte) (RegionSubmapInfo64, error) {
	if len(b) < VM_REGION_SUBMAP_INFO_COUNT_64*4 {
		return RegionSubmapInfo64{}, fmt.Errorf("vm_region_submap_info_64: %w: %d bytes", ErrStateSize, len(b))
	}
	le := binary.LittleEndian
	return RegionSubmapInfo64{
		Protection:    VMProt(le.Uint32(b[0:])),
		MaxProtection: VMProt(le.Uint32(b[4:])),
		Inheritance:   le.Uint32(b[8:]),
		Offset:        le.Uint64(b[12:]),
		UserTag:       le.Uint32(b[20:]),
		PagesResident: le.Uint32(b[24:]),
		RefCount:      le.Uint32(b[40:]),
		ShadowDepth:   le.Uint16(b[44:]),
		ExternalPager: b[46],
		ShareMode:     b[47],
		IsSubmap:      le.Uint32(b[48:]) != 0,
		Behavior:      int32(le.Uint32(b[52:])),
		ObjectID:      le.Uint32(b[56:]),
	}, nil
}

// Region is one mapping found by mach_vm_region.
type Region struct {
	Address uint64
	Size    uint64
	Info    RegionBasicInfo64
}

// SubmapRegion is one mapping found by mach_vm_region_recurse.
type SubmapRegion struct {
	Address uint64
	Size    uint64
	Depth   uint32
	Info    RegionSubmapInfo64
}

// CSFlags are a process's code-signing status flags (csops CS_OPS_STATUS,
// osfmk/kern/cs_blobs.h).
type CSFlags uint32

// Code-signing flags.
const (
	CS_VALID           CSFlags = 0x1
	CS_ADHOC           CSFlags = 0x2
	CS_GET_TASK_ALLOW  CSFlags = 0x4
	CS_INSTALLER       CSFlags = 0x8
	CS_HARD            CSFlags = 0x100
	CS_KILL            CSFlags = 0x200
	CS_RESTRICT        CSFlags = 0x800
	CS_ENFORCEMENT     CSFlags = 0x1000
	CS_REQUIRE_LV      CSFlags = 0x2000
	CS_RUNTIME         CSFlags = 0x10000
	CS_LINKER_SIGNED   CSFlags = 0x20000
	CS_PLATFORM_BINARY CSFlags = 0x4000000
	CS_DEBUGGED        CSFlags = 0x10000000
	CS_SIGNED          CSFlags = 0x20000000
)

var csNames = []struct {
	f    CSFlags
	name string
}{
	{CS_VALID, "valid"}, {CS_ADHOC, "adhoc"}, {CS_GET_TASK_ALLOW, "get-task-allow"},
	{CS_INSTALLER, "installer"}, {CS_HARD, "hard"}, {CS_KILL, "kill"},
	{CS_RESTRICT, "restrict"}, {CS_ENFORCEMENT, "enforcement"}, {CS_REQUIRE_LV, "library-validation"},
	{CS_RUNTIME, "runtime"}, {CS_LINKER_SIGNED, "linker-signed"},
	{CS_PLATFORM_BINARY, "platform-binary"}, {CS_DEBUGGED, "debugged"}, {CS_SIGNED, "signed"},
}

// String lists the set flags by name ("valid,adhoc,runtime"), with any
// unnamed bits in hex.
func (f CSFlags) String() string {
	var parts []string
	rest := f
	for _, n := range csNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// WordBytes views a []uint32 buffer as bytes in host order, which is little
// endian on every darwin architecture. The result aliases w.
func WordBytes(w []uint32) []byte {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*4)
}
