package darwin

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/mach"
)

func attachFake(t *testing.T, k *fakeKernel, goarch string) *Task {
	t.Helper()
	task, err := attach(k, goarch, k.pid)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return task
}

func TestSuspendUsesTokensAndDetachReleasesEverything(t *testing.T) {
	k := newFakeKernel()
	task := attachFake(t, k, "amd64")
	if task.Describe() != "pid 4242 (workload)" {
		t.Errorf("Describe() = %q", task.Describe())
	}
	for i := 0; i < 2; i++ {
		if err := task.Suspend(); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.tokens) != 2 || !task.Suspended() {
		t.Fatalf("after two Suspends: %d tokens outstanding, Suspended=%v", len(k.tokens), task.Suspended())
	}
	if err := task.Resume(); err != nil {
		t.Fatal(err)
	}
	if len(k.tokens) != 1 {
		t.Fatalf("after one Resume: %d tokens", len(k.tokens))
	}
	if _, err := task.Threads(); err != nil {
		t.Fatal(err)
	}
	// Detach while suspended: the target must run again and every right
	// the tracer holds must be released.
	if err := task.Detach(); err != nil {
		t.Fatal(err)
	}
	if len(k.tokens) != 0 {
		t.Errorf("detach left %d suspension tokens", len(k.tokens))
	}
	if k.resumes != 0 {
		t.Errorf("legacy task_resume called %d times on an attached task", k.resumes)
	}
	if n := k.heldRefs(); n != 0 {
		t.Errorf("detach leaked %d port references: %v", n, k.urefs)
	}
	if err := task.Resume(); !errors.Is(err, ErrDetached) {
		t.Errorf("Resume after Detach: %v", err)
	}
}

func TestResumeWithoutSuspend(t *testing.T) {
	task := attachFake(t, newFakeKernel(), "amd64")
	if err := task.Resume(); !errors.Is(err, ErrNotSuspended) {
		t.Errorf("err = %v, want ErrNotSuspended", err)
	}
}

func TestThreadPortBookkeeping(t *testing.T) {
	k := newFakeKernel()
	task := attachFake(t, k, "amd64")
	want := []uint64{0x10000, 0x10001, 0x10002}
	for round := 0; round < 5; round++ {
		ids, err := task.ThreadIDs()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("round %d: ids %x, want %x", round, ids, want)
		}
		// One reference per thread plus the task port, however often we list.
		if n := k.heldRefs(); n != len(want)+1 {
			t.Fatalf("round %d: %d references held, want %d", round, n, len(want)+1)
		}
	}
	// A thread dies and another starts.
	k.thrs[1].dead = true
	k.addThread("late")
	threads, err := task.Threads()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, th := range threads {
		names = append(names, th.Name)
	}
	if !slices.Equal(names, []string{"t0", "t2", "late"}) {
		t.Errorf("names %v", names)
	}
	if n := k.heldRefs(); n != 4 {
		t.Errorf("%d references held after a thread died and one started, want 4: %v", n, k.urefs)
	}
	if _, err := task.GetState(0x10001, mach.X86_THREAD_STATE64); !errors.Is(err, ErrNoThread) {
		t.Errorf("state of the dead thread: %v, want ErrNoThread", err)
	}
	task.Detach()
	if n := k.heldRefs(); n != 0 {
		t.Errorf("detach leaked %d references", n)
	}
}

func TestThreadTableDuplicatesAndFailures(t *testing.T) {
	tt := newThreadTable()
	ids := map[mach.Thread]uint64{1: 10, 2: 20}
	lookup := func(p mach.Thread) (uint64, error) {
		if id, ok := ids[p]; ok {
			return id, nil
		}
		return 0, &mach.KernError{Op: "thread_info", Code: mach.KERN_TERMINATED}
	}
	rel := tt.refresh([]mach.Thread{1, 2, 2, 3}, lookup)
	// 2 listed twice: one extra reference; 3 died before lookup: released.
	if slices.Sort(rel); !slices.Equal(rel, []mach.Thread{2, 3}) {
		t.Errorf("release %v, want [2 3]", rel)
	}
	if !slices.Equal(tt.order, []uint64{10, 20}) {
		t.Errorf("order %v", tt.order)
	}
	rel = tt.refresh([]mach.Thread{2}, lookup)
	if slices.Sort(rel); !slices.Equal(rel, []mach.Thread{1, 2}) {
		t.Errorf("release %v, want [1 2] (1 vanished, 2's extra reference)", rel)
	}
	if _, ok := tt.port(10); ok {
		t.Error("thread 10 still in the table")
	}
}

func TestGetStateStripsPAC(t *testing.T) {
	k := newFakeKernel()
	k.armState = mach.ARMThreadState64{
		Pc: 0x0000_0001_0000_4000,
		Lr: 0x002d_8001_0000_5678, // signed return address of an arm64e caller
		Fp: 0x0000_7ffe_efbf_f000,
		Sp: 0x0000_7ffe_efbf_efe0,
	}
	k.armState.X[0] = 0xdead_0000_0000_0001 // general registers are data, left alone
	task := attachFake(t, k, "arm64")
	s, err := task.GetState(0x10000, mach.ARM_THREAD_STATE64)
	if err != nil {
		t.Fatal(err)
	}
	ts := s.(*mach.ARMThreadState64)
	if ts.Lr != 0x0000_0001_0000_5678 {
		t.Errorf("lr = %#x, want PAC stripped 0x100005678", ts.Lr)
	}
	if ts.Pc != 0x1_0000_4000 || ts.Fp != 0x7ffe_efbf_f000 || ts.X[0] != 0xdead_0000_0000_0001 {
		t.Errorf("state %+v", ts)
	}
	if _, err := task.GetState(0x10000, mach.X86_THREAD_STATE64); !errors.Is(err, mach.ErrUnsupportedState) {
		t.Errorf("x86 flavor on arm64: %v", err)
	}
	if got := task.StripPointer(0x0021_0001_0000_9abc); got != 0x1_0000_9abc {
		t.Errorf("StripPointer = %#x", got)
	}
	if got := attachFake(t, newFakeKernel(), "amd64").StripPointer(0x0021_0001_0000_9abc); got != 0x0021_0001_0000_9abc {
		t.Errorf("amd64 StripPointer changed the address: %#x", got)
	}
}

func TestPACMask(t *testing.T) {
	tests := []struct {
		bits uint
		want uint64
	}{
		{47, 0x0000_7fff_ffff_ffff},
		{0, 0x0000_7fff_ffff_ffff}, // sysctl unavailable: fallback 47
		{39, 0x0000_007f_ffff_ffff},
		{64, ^uint64(0)},
		{99, 0x0000_7fff_ffff_ffff},
	}
	for _, tt := range tests {
		if got := PACMask(tt.bits); got != tt.want {
			t.Errorf("PACMask(%d) = %#x, want %#x", tt.bits, got, tt.want)
		}
	}
	if StripPAC(0x1234, PACMask(47)) != 0x1234 {
		t.Error("unsigned pointer changed")
	}
}

func TestSetStateRules(t *testing.T) {
	k := newFakeKernel()
	k.flags = mach.CS_VALID | mach.CS_PLATFORM_BINARY
	task := attachFake(t, k, "arm64")
	err := task.SetState(0x10000, &mach.ARMThreadState64{})
	if !errors.Is(err, ErrPlatformBinary) || k.setCalls != 0 {
		t.Errorf("platform binary: err %v, %d thread_set_state calls", err, k.setCalls)
	}

	k = newFakeKernel()
	k.setStateErr = &mach.KernError{Op: "thread_set_state", Code: mach.KERN_PROTECTION_FAILURE}
	task = attachFake(t, k, "arm64")
	err = task.SetState(0x10000, &mach.ARMThreadState64{})
	if !errors.Is(err, ErrPermission) || !errors.Is(err, mach.KERN_PROTECTION_FAILURE) || !strings.Contains(err.Error(), "arm64e") {
		t.Errorf("arm64e target: %v", err)
	}
	if err := task.SetState(0x10000, &mach.X86ThreadState64{}); !errors.Is(err, mach.ErrUnsupportedState) {
		t.Errorf("x86 state on arm64: %v", err)
	}
}

func TestThreadAndTaskDeath(t *testing.T) {
	k := newFakeKernel()
	task := attachFake(t, k, "amd64")
	task.ThreadIDs()
	k.getStateErr = &mach.KernError{Op: "thread_get_state", Code: mach.MACH_SEND_INVALID_DEST}
	if _, err := task.GetState(0x10000, mach.X86_THREAD_STATE64); !errors.Is(err, ErrNoThread) {
		t.Errorf("dead thread: %v", err)
	}
	k.alive = false
	if _, err := task.GetState(0x10000, mach.X86_THREAD_STATE64); !errors.Is(err, ErrExited) {
		t.Errorf("dead task: %v", err)
	}
	if _, err := task.ThreadIDs(); !errors.Is(err, ErrExited) {
		t.Errorf("threads of a dead task: %v", err)
	}
}

func TestReadMemoryPageByPage(t *testing.T) {
	k := newFakeKernel()
	k.poke(0x10000, []byte("abcdefgh"))
	k.poke(0x10ff8, []byte("12345678")) // the last bytes of page 0x10000
	// 0x11000 is unmapped.
	task := attachFake(t, k, "amd64")
	buf := make([]byte, 16)
	n, err := task.ReadMemory(0x10ff8, buf)
	if n != 8 || string(buf[:8]) != "12345678" {
		t.Errorf("read across a hole: n=%d %q", n, buf[:n])
	}
	if !errors.Is(err, ErrUnmapped) || !errors.Is(err, mach.KERN_INVALID_ADDRESS) {
		t.Errorf("err = %v, want ErrUnmapped", err)
	}
	k.readCalls = 0
	n, err = task.ReadMemory(0x10000, buf[:8])
	if err != nil || n != 8 || string(buf[:8]) != "abcdefgh" || k.readCalls != 1 {
		t.Errorf("mapped read: n=%d err=%v calls=%d", n, err, k.readCalls)
	}
}

func TestReadPagedEdges(t *testing.T) {
	read := func(addr uint64, p []byte) (int, error) { return len(p), nil }
	if _, err := readPaged(read, 0, make([]byte, 4), 3000); err == nil {
		t.Error("page size 3000 accepted")
	}
	if n, err := readPaged(read, 0, nil, 4096); n != 0 || err != nil {
		t.Error("empty read")
	}
}

func TestWriteMemoryProtected(t *testing.T) {
	k := newFakeKernel()
	k.poke(0x20000, make([]byte, 16))
	k.readOnly[0x20000] = true
	k.regionProt = mach.VM_PROT_READ | mach.VM_PROT_EXECUTE
	task := attachFake(t, k, "amd64")
	n, err := task.WriteMemory(0x20004, []byte{0xcc})
	if err != nil || n != 1 {
		t.Fatalf("write: %d, %v", n, err)
	}
	if k.mem[0x20000][4] != 0xcc {
		t.Error("byte not written")
	}
	want := []mach.VMProt{mach.VM_PROT_READ | mach.VM_PROT_WRITE | mach.VM_PROT_COPY, mach.VM_PROT_READ | mach.VM_PROT_EXECUTE}
	if !slices.Equal(k.protects, want) {
		t.Errorf("protections %v, want %v (make writable with COPY, then restore)", k.protects, want)
	}
	if _, err := task.WriteMemory(0x90000, []byte{1}); !errors.Is(err, ErrUnmapped) {
		t.Errorf("unmapped write: %v", err)
	}
}

func TestLaunchSuspended(t *testing.T) {
	k := newFakeKernel()
	task, err := launch(k, "amd64", []string{"/bin/sh", "-c", "exit 0"}, LaunchOptions{Env: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	a := k.spawned
	if a == nil || a.Flags&mach.POSIX_SPAWN_START_SUSPENDED == 0 || a.Path != "/bin/sh" || !slices.Equal(a.Argv, []string{"/bin/sh", "-c", "exit 0"}) || !slices.Equal(a.Env, []string{"A=1"}) {
		t.Fatalf("spawn attr %+v", a)
	}
	if !task.Suspended() {
		t.Error("launched task not suspended")
	}
	// A nested Suspend/Resume uses a token; the last Resume lifts the
	// spawn hold with task_resume.
	task.Suspend()
	task.Resume()
	if k.resumes != 0 {
		t.Error("spawn hold lifted early")
	}
	if err := task.Resume(); err != nil || k.resumes != 1 || task.Suspended() {
		t.Errorf("first Resume: err %v, task_resume calls %d", err, k.resumes)
	}
	if _, err := task.Wait(); err != nil || !k.waited {
		t.Errorf("Wait: %v", err)
	}
}

func TestImagesBeforeDyldRan(t *testing.T) {
	k := newFakeKernel()
	// dyld_all_image_infos as the kernel leaves it: empty, unrebased.
	k.poke32(aiiAddr, 17)
	k.poke(aiiAddr+4, make([]byte, aiiReadSize))
	k.dyld = mach.TaskDyldInfo{AllImageInfoAddr: aiiAddr, AllImageInfoFormat: mach.TASK_DYLD_ALL_IMAGE_INFO_64}
	machHeader(k, exeBase, 0x1_0000_0000, 0x4000, 0xaa)
	k.poke32(exeBase+12, mhExecute)
	machHeader(k, dyldBase, 0, 0x8000, 0xcc)
	k.poke32(dyldBase+12, mhDylinker)
	task, err := launch(k, "arm64", []string{"/bin/sh"}, LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	images, err := task.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 2 || images[0].Path != "/bin/sh" || images[0].Base != exeBase || images[0].End != exeBase+0x4000 ||
		images[1].Path != "/usr/lib/dyld" || images[1].Base != dyldBase {
		t.Errorf("images %+v", images)
	}
}

func TestLaunchKillsChildWhenRefused(t *testing.T) {
	k := newFakeKernel()
	k.tfpErr = &mach.KernError{Op: "task_for_pid", Code: mach.KERN_FAILURE}
	_, err := launch(k, "amd64", []string{"/bin/sh"}, LaunchOptions{})
	if !errors.Is(err, ErrPermission) {
		t.Errorf("err = %v, want ErrPermission", err)
	}
	if !k.killed || !k.waited {
		t.Error("refused child was left stopped")
	}
	var ae *AttachError
	if !errors.As(err, &ae) || ae.Diagnosis.Rule != RuleNeedRoot {
		t.Errorf("diagnosis %+v", ae)
	}
}

func TestAttachRefusedRunsDoctor(t *testing.T) {
	k := newFakeKernel()
	k.tfpErr = &mach.KernError{Op: "task_for_pid", Code: mach.KERN_FAILURE}
	k.flags = mach.CS_VALID | mach.CS_RUNTIME
	k.euidV = 0
	_, err := attach(k, "arm64", k.pid)
	var ae *AttachError
	if !errors.As(err, &ae) || ae.Diagnosis.Rule != RuleHardenedRuntime {
		t.Fatalf("err %v", err)
	}
	for _, target := range []error{ErrPermission, mach.KERN_FAILURE} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false", target)
		}
	}
	if !strings.Contains(err.Error(), "macOSTaskPolicy") || !strings.Contains(err.Error(), "get-task-allow") {
		t.Errorf("message lacks the hint: %v", err)
	}
	if _, err := attach(k, "arm64", 99999); !errors.Is(err, ErrNoProcess) {
		t.Errorf("missing pid: %v", err)
	}
	if _, err := attach(k, "arm64", 0); !errors.Is(err, ErrNoProcess) {
		t.Errorf("pid 0: %v", err)
	}
}

func TestAttachRefusesRosettaTarget(t *testing.T) {
	k := newFakeKernel()
	k.info.Translated = true
	_, err := attach(k, "arm64", k.pid)
	var ae *AttachError
	if !errors.As(err, &ae) || ae.Diagnosis.Rule != RuleTranslated {
		t.Fatalf("err %v", err)
	}
	if n := k.heldRefs(); n != 0 {
		t.Errorf("leaked %d references", n)
	}
}

func TestAttachWithoutMachCalls(t *testing.T) {
	if mach.Available {
		t.Skip("this build makes real Mach calls")
	}
	_, err := Attach(1)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
}

// BenchmarkThreadIDs measures the bookkeeping cost of one task_threads round
// for 64 known threads (the Mach call itself is faked): the part of a sample
// that is machtrace's own.
func BenchmarkThreadIDs(b *testing.B) {
	k := newFakeKernel()
	for i := 0; i < 61; i++ {
		k.addThread("w")
	}
	task, err := attach(k, "amd64", k.pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := task.ThreadIDs(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadImages measures parsing a dyld image list from memory.
func BenchmarkReadImages(b *testing.B) {
	k := dyldFixture()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadImages(k, aiiAddr, 1); err != nil {
			b.Fatal(err)
		}
	}
}
