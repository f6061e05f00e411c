package darwin

import (
	"encoding/binary"
	"fmt"

	"github.com/machtrace/machtrace/mach"
)

// fakeKernel is a Mach kernel in miniature with one target process. It
// counts the user references the tracer holds on every port name, the
// suspension tokens outstanding and the legacy holds, so tests can check
// the backend's port hygiene and suspension discipline.
type fakeKernel struct {
	pid       int
	alive     bool
	tfpErr    error
	flags     mach.CSFlags
	info      procInfo
	euidV     int
	entitledV Tristate
	vabits    uint
	page      uint64

	taskPort mach.Task
	urefs    map[mach.Port]int // references the tracer holds, by name
	nextName uint32

	thrs     []*fakeThread
	tokens   map[mach.SuspensionToken]bool
	resumes  int // task_resume calls (the spawn hold)
	suspends int // task_suspend2 calls

	getStateErr error
	setStateErr error
	setCalls    int
	armState    mach.ARMThreadState64

	mem        map[uint64][]byte // page address -> page
	readOnly   map[uint64]bool   // pages that refuse mach_vm_write
	protects   []mach.VMProt
	dyld       mach.TaskDyldInfo
	spawned    *mach.SpawnAttr
	killed     bool
	waited     bool
	readCalls  int
	regionProt mach.VMProt
}

type fakeThread struct {
	id   uint64
	name string
	port mach.Thread
	dead bool
}

func newFakeKernel() *fakeKernel {
	k := &fakeKernel{pid: 4242, alive: true, euidV: 501, info: procInfo{Name: "workload", UID: 501},
		page: 4096, urefs: map[mach.Port]int{}, tokens: map[mach.SuspensionToken]bool{},
		mem: map[uint64][]byte{}, readOnly: map[uint64]bool{}, nextName: 0x1000, vabits: 47}
	k.taskPort = mach.Task(k.newName())
	for i := 0; i < 3; i++ {
		k.addThread(fmt.Sprintf("t%d", i))
	}
	return k
}

func (k *fakeKernel) newName() mach.Port {
	k.nextName += 4
	return mach.Port(k.nextName)
}

func (k *fakeKernel) addThread(name string) *fakeThread {
	th := &fakeThread{id: uint64(0x10000 + len(k.thrs)), name: name, port: mach.Thread(k.newName())}
	k.thrs = append(k.thrs, th)
	return th
}

// heldRefs sums the references the tracer still holds.
func (k *fakeKernel) heldRefs() int {
	n := 0
	for _, r := range k.urefs {
		n += r
	}
	return n
}

func (k *fakeKernel) taskForPid(pid int) (mach.Task, error) {
	if k.tfpErr != nil {
		return 0, k.tfpErr
	}
	if pid != k.pid || !k.alive {
		return 0, &mach.KernError{Op: "task_for_pid", Code: mach.KERN_FAILURE}
	}
	k.urefs[mach.Port(k.taskPort)]++
	return k.taskPort, nil
}

func (k *fakeKernel) pidForTask(t mach.Task) (int, error) {
	if !k.alive {
		return 0, &mach.KernError{Op: "pid_for_task", Code: mach.KERN_FAILURE}
	}
	return k.pid, nil
}

func (k *fakeKernel) suspend2(t mach.Task) (mach.SuspensionToken, error) {
	k.suspends++
	tok := mach.SuspensionToken(k.newName())
	k.tokens[tok] = true
	return tok, nil
}

func (k *fakeKernel) resume2(tok mach.SuspensionToken) error {
	if !k.tokens[tok] {
		return &mach.KernError{Op: "task_resume2", Code: mach.KERN_INVALID_NAME}
	}
	delete(k.tokens, tok)
	return nil
}

func (k *fakeKernel) resume(t mach.Task) error { k.resumes++; return nil }

func (k *fakeKernel) threads(t mach.Task) ([]mach.Thread, error) {
	if !k.alive {
		return nil, &mach.KernError{Op: "task_threads", Code: mach.MACH_SEND_INVALID_DEST}
	}
	var out []mach.Thread
	for _, th := range k.thrs {
		if !th.dead {
			k.urefs[mach.Port(th.port)]++ // each answer carries one more reference
			out = append(out, th.port)
		}
	}
	return out, nil
}

func (k *fakeKernel) deallocate(p mach.Port) error {
	if k.urefs[p] == 0 {
		return &mach.KernError{Op: "mach_port_deallocate", Code: mach.KERN_INVALID_RIGHT}
	}
	k.urefs[p]--
	if k.urefs[p] == 0 {
		delete(k.urefs, p)
	}
	return nil
}

func (k *fakeKernel) thread(th mach.Thread) (*fakeThread, error) {
	for _, t := range k.thrs {
		if t.port == th {
			if t.dead {
				return nil, &mach.KernError{Op: "thread", Code: mach.KERN_TERMINATED}
			}
			return t, nil
		}
	}
	return nil, &mach.KernError{Op: "thread", Code: mach.MACH_SEND_INVALID_DEST}
}

func (k *fakeKernel) getState(th mach.Thread, s mach.State) error {
	if k.getStateErr != nil {
		return k.getStateErr
	}
	if _, err := k.thread(th); err != nil {
		return err
	}
	if ts, ok := s.(*mach.ARMThreadState64); ok {
		*ts = k.armState
	}
	return nil
}

func (k *fakeKernel) setState(th mach.Thread, s mach.State) error {
	k.setCalls++
	return k.setStateErr
}

func (k *fakeKernel) threadInfo(th mach.Thread, info mach.ThreadInfoData) error {
	t, err := k.thread(th)
	if err != nil {
		return err
	}
	switch i := info.(type) {
	case *mach.ThreadIdentifierInfo:
		i.ThreadID = t.id
	case *mach.ThreadExtendedInfo:
		copy(i.RawName[:], t.name)
		i.RunState = mach.TH_STATE_WAITING
	case *mach.ThreadBasicInfo:
		i.SuspendCount = 0
	}
	return nil
}

// readMem is all or nothing, like mach_vm_read_overwrite.
func (k *fakeKernel) readMem(t mach.Task, addr uint64, p []byte) (int, error) {
	k.readCalls++
	for a := addr &^ (k.page - 1); a < addr+uint64(len(p)); a += k.page {
		if k.mem[a] == nil {
			return 0, &mach.KernError{Op: "mach_vm_read_overwrite", Code: mach.KERN_INVALID_ADDRESS}
		}
	}
	for i := range p {
		a := addr + uint64(i)
		p[i] = k.mem[a&^(k.page-1)][a&(k.page-1)]
	}
	return len(p), nil
}

func (k *fakeKernel) writeMem(t mach.Task, addr uint64, p []byte) error {
	pg := addr &^ (k.page - 1)
	if k.mem[pg] == nil {
		return &mach.KernError{Op: "mach_vm_write", Code: mach.KERN_INVALID_ADDRESS}
	}
	if k.readOnly[pg] {
		return &mach.KernError{Op: "mach_vm_write", Code: mach.KERN_PROTECTION_FAILURE}
	}
	copy(k.mem[pg][addr-pg:], p)
	return nil
}

func (k *fakeKernel) protect(t mach.Task, addr, size uint64, setMax bool, prot mach.VMProt) error {
	k.protects = append(k.protects, prot)
	k.readOnly[addr&^(k.page-1)] = prot&mach.VM_PROT_WRITE == 0
	return nil
}

// region returns the mapped page at or after addr, as mach_vm_region does
// for regions (the fake's regions are single pages).
func (k *fakeKernel) region(t mach.Task, addr uint64) (mach.Region, error) {
	best, found := uint64(0), false
	for pg := range k.mem {
		if pg+k.page > addr && (!found || pg < best) {
			best, found = pg, true
		}
	}
	if !found {
		return mach.Region{}, &mach.KernError{Op: "mach_vm_region", Code: mach.KERN_INVALID_ADDRESS}
	}
	prot := k.regionProt
	if prot == 0 {
		prot = mach.VM_PROT_READ
	}
	return mach.Region{Address: best, Size: k.page, Info: mach.RegionBasicInfo64{Protection: prot}}, nil
}

func (k *fakeKernel) dyldInfo(t mach.Task) (mach.TaskDyldInfo, error) { return k.dyld, nil }
func (k *fakeKernel) csFlags(pid int) (mach.CSFlags, error)           { return k.flags, nil }
func (k *fakeKernel) spawn(a *mach.SpawnAttr) (int, error)            { k.spawned = a; return k.pid, nil }
func (k *fakeKernel) processExists(pid int) bool                      { return pid == k.pid && k.alive }
func (k *fakeKernel) processInfo(pid int) (procInfo, error)           { return k.info, nil }
func (k *fakeKernel) euid() int                                       { return k.euidV }
func (k *fakeKernel) vaBits() uint                                    { return k.vabits }
func (k *fakeKernel) pageSize() uint64                                { return k.page }
func (k *fakeKernel) entitled() Tristate                              { return k.entitledV }
func (k *fakeKernel) wait(pid int) (int, error)                       { k.waited = true; return 0, nil }
func (k *fakeKernel) kill(pid int) error                              { k.killed = true; return nil }

// poke writes little-endian values into fake memory, mapping pages as needed.
func (k *fakeKernel) poke(addr uint64, b []byte) {
	for i, c := range b {
		a := addr + uint64(i)
		pg := a &^ (k.page - 1)
		if k.mem[pg] == nil {
			k.mem[pg] = make([]byte, k.page)
		}
		k.mem[pg][a-pg] = c
	}
}

func (k *fakeKernel) poke64(addr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	k.poke(addr, b[:])
}

func (k *fakeKernel) poke32(addr uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	k.poke(addr, b[:])
}

// ReadAt lets the fake's memory serve ReadImages directly.
func (k *fakeKernel) ReadAt(p []byte, off int64) (int, error) {
	return readPaged(func(a uint64, b []byte) (int, error) { return k.readMem(0, a, b) }, uint64(off), p, k.page)
}
