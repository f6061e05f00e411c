// Package testvm boots the test virtual machine that scripts/testvm.sh
// builds (a Debian cloud kernel and a busybox initramfs under QEMU/TCG, with
// a gdb stub on loopback and a QMP socket), for tests of kernel targets.
//
// Tests call Start, which skips them with a clear message when
// MACHTRACE_TESTVM is unset (the VM has not been built), and fails them when
// it is set but the VM cannot be booted.
package testvm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvVar names the environment variable that points at the built VM.
const EnvVar = "MACHTRACE_TESTVM"

// Options configure Start.
type Options struct {
	SMP int // vCPUs; 0 means 2
	// NoKASLR boots with nokaslr, so kernel addresses equal the kallsyms
	// file's. By default KASLR is on and the slide must be found.
	NoKASLR bool
	// BootTimeout bounds the wait for the init's marker; 0 means 90 s.
	BootTimeout time.Duration
}

// VM is a running test VM.
type VM struct {
	Dir      string // the built VM (vmlinuz, initramfs.cpio.gz, kallsyms)
	GDBAddr  string // "127.0.0.1:PORT"
	QMPPath  string
	BootTime time.Duration // launch to the init's INIT_RUNNING line

	cmd    *exec.Cmd
	mu     sync.Mutex
	serial strings.Builder
	done   chan struct{}
	tmp    string
}

// Dir returns the VM directory, skipping the test when it is not set.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv(EnvVar)
	if dir == "" {
		tb.Skipf("%s is not set: build the test VM with scripts/testvm.sh and export %s=<dir> to run kernel-target tests", EnvVar, EnvVar)
	}
	for _, f := range []string{"vmlinuz", "initramfs.cpio.gz", "kallsyms"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Fatalf("%s=%s: %v (rebuild with scripts/testvm.sh)", EnvVar, dir, err)
		}
	}
	return dir
}

// Kallsyms returns the path of the VM's symbol table (taken with nokaslr).
func (vm *VM) Kallsyms() string { return filepath.Join(vm.Dir, "kallsyms") }

// Start boots the VM and waits until its init runs the busy loop. The VM is
// killed when the test ends.
func Start(tb testing.TB, opts Options) *VM {
	tb.Helper()
	dir := Dir(tb)
	vm, err := Boot(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vm.Kill)
	return vm
}

var shared struct {
	mu  sync.Mutex
	vm  *VM
	err error
}

// Shared returns a 2-vCPU VM with KASLR on that is booted once per test
// binary and shared by its tests; call StopShared from TestMain after
// m.Run. Tests must leave it running (detach, never just close, a stub
// connection).
func Shared(tb testing.TB) *VM {
	tb.Helper()
	dir := Dir(tb)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.vm == nil && shared.err == nil {
		shared.vm, shared.err = Boot(dir, Options{})
		if shared.err == nil {
			tb.Logf("test VM booted in %v, gdb stub at %s", shared.vm.BootTime.Round(time.Millisecond), shared.vm.GDBAddr)
		}
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	if err := shared.vm.Alive(); err != nil {
		// Fail every later test with the cause, not "connection refused".
		shared.err = fmt.Errorf("the shared test VM died during an earlier test: %w", err)
		tb.Fatal(shared.err)
	}
	return shared.vm
}

// Alive returns an error with the end of the console output if QEMU has
// exited (a guest that panics or triple-faults makes it exit: -no-reboot).
func (vm *VM) Alive() error {
	select {
	case <-vm.done:
		s := vm.Serial()
		if len(s) > 3000 {
			s = s[len(s)-3000:]
		}
		return fmt.Errorf("qemu exited (%v); console tail:\n%s", vm.cmd.ProcessState, s)
	default:
		return nil
	}
}

// StopShared kills the shared VM, if one was booted.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.vm != nil {
		shared.vm.Kill()
		shared.vm = nil
	}
}

// Boot boots the VM in dir (see Start, which also skips and cleans up).
func Boot(dir string, opts Options) (*VM, error) {
	if opts.SMP == 0 {
		opts.SMP = 2
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 90 * time.Second
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("testvm: %w (scripts/testvm.sh installs qemu-system-x86)", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "machtrace-testvm-")
	if err != nil {
		return nil, err
	}
	vm := &VM{Dir: dir, GDBAddr: fmt.Sprintf("127.0.0.1:%d", port), QMPPath: filepath.Join(tmp, "qmp.sock"), done: make(chan struct{}), tmp: tmp}
	appendArgs := "console=ttyS0 quiet panic=-1"
	if opts.NoKASLR {
		appendArgs += " nokaslr"
	}
	vm.cmd = exec.Command(qemu, "-accel", "tcg", "-nographic", "-m", "256M", "-smp", fmt.Sprint(opts.SMP), "-nic", "none",
		"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, "initramfs.cpio.gz"),
		"-append", appendArgs, "-no-reboot",
		"-gdb", "tcp:"+vm.GDBAddr,
		"-qmp", "unix:"+vm.QMPPath+",server=on,wait=off")
	out, err := vm.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	vm.cmd.Stderr = vm.cmd.Stdout
	start := time.Now()
	if err := vm.cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("testvm: start qemu: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(vm.done)
		br := bufio.NewReader(out)
		seen := false
		for {
			line, err := br.ReadString('\n')
			vm.mu.Lock()
			if vm.serial.Len() < 1<<20 {
				vm.serial.WriteString(line)
			}
			vm.mu.Unlock()
			if !seen && strings.Contains(line, "BUSY_STARTED") {
				seen = true
				close(ready)
			}
			if err != nil {
				break
			}
		}
		vm.cmd.Wait()
	}()
	select {
	case <-ready:
		vm.BootTime = time.Since(start)
	case <-vm.done:
		vm.Kill()
		return nil, fmt.Errorf("testvm: qemu exited before init ran:\n%s", vm.Serial())
	case <-time.After(opts.BootTimeout):
		vm.Kill()
		return nil, fmt.Errorf("testvm: init did not start within %v:\n%s", opts.BootTimeout, vm.Serial())
	}
	return vm, nil
}

// Serial returns the console output so far.
func (vm *VM) Serial() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.serial.String()
}

// Kill stops QEMU and removes its sockets.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
		<-vm.done
	}
	os.RemoveAll(vm.tmp)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// QMP runs one QMP command and returns its "return" value.
func (vm *VM) QMP(command string) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", vm.QMPPath, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	dec := json.NewDecoder(c)
	var greeting map[string]json.RawMessage
	if err := dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	call := func(cmd string) (json.RawMessage, error) {
		if _, err := fmt.Fprintf(c, `{"execute":%q}`+"\n", cmd); err != nil {
			return nil, err
		}
		for {
			var m map[string]json.RawMessage
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if r, ok := m["return"]; ok {
				return r, nil
			}
			if e, ok := m["error"]; ok {
				return nil, fmt.Errorf("qmp %s: %s", cmd, e)
			}
			// an event: keep reading
		}
	}
	if _, err := call("qmp_capabilities"); err != nil {
		return nil, err
	}
	return call(command)
}

// Status returns QMP query-status's status ("running", "paused").
func (vm *VM) Status() (string, error) {
	r, err := vm.QMP("query-status")
	if err != nil {
		return "", err
	}
	var s struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return s.Status, nil
}
