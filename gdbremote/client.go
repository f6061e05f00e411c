package gdbremote

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/machtrace/machtrace/tracer"
)

// Options configure Dial.
type Options struct {
	// Timeout bounds every wait for an answer from the stub. Zero means
	// 5 seconds.
	Timeout time.Duration
	// DialTimeout bounds the TCP connect. Zero means Timeout.
	DialTimeout time.Duration
	// Trace, if set, receives every packet sent and received.
	Trace io.Writer
}

func (o *Options) timeout() time.Duration {
	if o == nil || o.Timeout <= 0 {
		return 5 * time.Second
	}
	return o.Timeout
}

// ThreadInfo is one stub thread: a vCPU for hypervisor stubs.
type ThreadInfo struct {
	ID    string // wire form: "p01.02" or "02"
	PID   uint64 // 0 without multiprocess syntax
	TID   uint64
	Extra string // qThreadExtraInfo text, e.g. "CPU#1 [running]"
}

// Client is a connection to a GDB remote stub, in all-stop mode. It is not
// safe for concurrent use; tracer.NewTarget serialises calls for the Backend.
type Client struct {
	c            *conn
	addr         string
	Supported    map[string]string // qSupported reply: "PacketSize" -> "1000", "qXfer:features:read" -> "+"
	Target       *TargetDescription
	multiprocess bool
	vCont        bool
	packetSize   int
	running      bool
	gThread      string // thread selected with Hg, "" when unknown
	lastStop     *StopReply
	threads      []ThreadInfo
	gcache       map[string][]byte // g bytes per thread since the last stop
	detached     bool
	connectStops []StopReply // stop replies that came unasked during Dial
}

// Dial connects to a stub at addr ("host:port"), negotiates features, reads
// the register layout, and lists the threads. Connecting stops a QEMU guest
// (QEMU pauses the VM when a debugger attaches); the client starts in the
// halted state, and Continue lets the guest run.
func Dial(addr string, opts *Options) (*Client, error) {
	to := opts.timeout()
	dto := to
	if opts != nil && opts.DialTimeout > 0 {
		dto = opts.DialTimeout
	}
	nc, err := net.DialTimeout("tcp", addr, dto)
	if err != nil {
		return nil, fmt.Errorf("gdb://%s: %w (is the VM started with a gdb stub on that port, e.g. qemu -gdb tcp:%s?)", addr, err, addr)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	var trace io.Writer
	if opts != nil {
		trace = opts.Trace
	}
	cl := &Client{c: newConn(nc, addr, to, trace), addr: addr, packetSize: 400, gcache: map[string][]byte{}}
	if err := cl.handshake(); err != nil {
		cl.c.close()
		return nil, err
	}
	return cl, nil
}

func (cl *Client) handshake() error {
	// No resend when the ack is slow: QEMU, busy pausing the VM under
	// load, can take more than 500 ms to ack the first packet, and then it
	// answers every copy (seen: the second qSupported reply taken for the
	// answer to qXfer).
	q := "qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+"
	if err := cl.c.send("qSupported", []byte(q)); err != nil {
		return err
	}
	p, err := cl.c.recv("qSupported", false)
	if err != nil {
		return err
	}
	if err := replyError("qSupported", p); err != nil {
		return err
	}
	cl.Supported = map[string]string{}
	for _, f := range strings.Split(string(p), ";") {
		switch {
		case f == "":
		case strings.HasSuffix(f, "+"), strings.HasSuffix(f, "-"), strings.HasSuffix(f, "?"):
			cl.Supported[f[:len(f)-1]] = f[len(f)-1:]
		default:
			k, v, _ := strings.Cut(f, "=")
			cl.Supported[k] = v
		}
	}
	if ps, err := strconv.ParseUint(cl.Supported["PacketSize"], 16, 32); err == nil && ps >= 64 {
		cl.packetSize = int(ps)
	}
	cl.multiprocess = cl.Supported["multiprocess"] == "+"
	if cl.Supported["QStartNoAckMode"] == "+" {
		if p, err := cl.c.request("QStartNoAckMode", []byte("QStartNoAckMode")); err == nil && string(p) == "OK" {
			cl.c.noAck = true
		}
	}
	if cl.Supported["qXfer:features:read"] == "+" {
		td, err := parseTargetDescription(cl.readFeature)
		if err != nil {
			return fmt.Errorf("gdb://%s: register layout: %w", cl.addr, err)
		}
		cl.Target = td
	} else {
		cl.Target = defaultAMD64()
	}
	if p, err := cl.c.request("vCont?", []byte("vCont?")); err == nil {
		cl.vCont = strings.Contains(string(p), ";c") && strings.Contains(string(p), ";s")
	} else if cl.c.err != nil {
		return err
	}
	// The stop reason tells which thread is current; it also confirms the
	// all-stop stub is halted, which it is after a debugger attaches.
	cl.connectStops = append(cl.connectStops, cl.c.async...)
	cl.c.async = cl.c.async[:0]
	if err := cl.c.send("?", []byte("?")); err != nil {
		return err
	}
	p, err = cl.c.recv("?", true)
	if err != nil {
		return err
	}
	if s, ok := parseStop(p); ok {
		cl.noteStop(s)
	} else if err := replyError("?", p); err != nil {
		return err
	}
	if _, err := cl.refreshThreads(); err != nil {
		return err
	}
	return nil
}

// readFeature reads one qXfer:features:read annex in chunks.
func (cl *Client) readFeature(name string) ([]byte, error) {
	var doc []byte
	chunk := cl.packetSize - 5
	for {
		op := fmt.Sprintf("qXfer:features:read:%s:%x,%x", name, len(doc), chunk)
		p, err := cl.c.request(op, []byte(op))
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, fmt.Errorf("%s: %w", op, ErrUnsupported)
		}
		doc = append(doc, p[1:]...)
		switch p[0] {
		case 'l':
			return doc, nil
		case 'm':
			if len(p) == 1 {
				return doc, nil
			}
		default:
			return nil, fmt.Errorf("%s: unexpected reply %q", op, printable(p))
		}
	}
}

// Addr returns the stub's address.
func (cl *Client) Addr() string { return cl.addr }

// Arch returns the target's architecture from its description.
func (cl *Client) Arch() tracer.Arch { return cl.Target.Arch }

// Running reports whether the guest was resumed and not halted since.
func (cl *Client) Running() bool { return cl.running }

// LastStop returns the stop reply that halted the guest last, or nil.
func (cl *Client) LastStop() *StopReply { return cl.lastStop }

// ConnectStops returns the stop replies that arrived unasked while Dial
// negotiated: QEMU sends one when a debugger connects to a running VM.
func (cl *Client) ConnectStops() []StopReply { return cl.connectStops }

// AsyncStops returns and clears the stop replies that arrived unasked (for
// example the one QEMU sends when a debugger connects to a running VM).
func (cl *Client) AsyncStops() []StopReply {
	s := append([]StopReply(nil), cl.c.async...)
	cl.c.async = cl.c.async[:0]
	return s
}

func (cl *Client) noteStop(s StopReply) {
	cl.running = false
	cl.lastStop = &s
	// A stop selects the stopping CPU for g/m in QEMU (gdb_set_stop_cpu).
	cl.gThread = s.Thread
	clear(cl.gcache)
}

// halted checks that a request can be sent.
func (cl *Client) halted(op string) error {
	if cl.c.err != nil {
		return cl.c.err
	}
	if cl.running {
		return fmt.Errorf("%s: %w", op, ErrRunning)
	}
	return nil
}

// Halt stops a running guest with a 0x03 byte and waits for the stop reply.
// It does nothing when the guest is already halted.
func (cl *Client) Halt() error {
	if cl.c.err != nil {
		return cl.c.err
	}
	if !cl.running {
		return nil
	}
	// A stop that came by itself (a breakpoint) is the answer already; the
	// 0x03 then reaches a halted stub, which ignores it.
	if len(cl.c.async) == 0 {
		cl.c.logf("-> ^C")
		if err := cl.c.write("halt (0x03)", []byte{0x03}); err != nil {
			return err
		}
	}
	p, err := cl.c.recv("halt (0x03)", true)
	if err != nil {
		return err
	}
	s, ok := parseStop(p)
	if !ok {
		return fmt.Errorf("gdb://%s: halt: expected a stop reply, got %q", cl.addr, printable(p))
	}
	cl.noteStop(s)
	return nil
}

// Continue resumes every vCPU. QEMU answers with the ack only; the next
// stop reply comes after Halt or when a breakpoint hits.
func (cl *Client) Continue() error {
	if err := cl.halted("continue"); err != nil {
		if errors.Is(err, ErrRunning) {
			return nil
		}
		return err
	}
	cmd := "c"
	if cl.vCont {
		cmd = "vCont;c"
	}
	cl.c.async = cl.c.async[:0]
	if err := cl.c.send(cmd, []byte(cmd)); err != nil {
		return err
	}
	cl.running = true
	cl.gThread = ""
	clear(cl.gcache)
	return nil
}

// Step single-steps one thread (vCPU) and waits for the stop.
func (cl *Client) Step(thread string) error {
	if err := cl.halted("step"); err != nil {
		return err
	}
	var cmd string
	switch {
	case cl.vCont && thread != "":
		cmd = "vCont;s:" + thread
	default:
		if thread != "" {
			if _, err := cl.c.request("Hc"+thread, []byte("Hc"+thread)); err != nil {
				return err
			}
		}
		cmd = "s"
	}
	if err := cl.c.send(cmd, []byte(cmd)); err != nil {
		return err
	}
	cl.running = true
	return cl.WaitStop(cl.c.timeout)
}

// WaitStop waits up to d for the guest to stop by itself (a breakpoint or
// a step) and records the stop.
func (cl *Client) WaitStop(d time.Duration) error {
	if !cl.running {
		return nil
	}
	saved := cl.c.timeout
	cl.c.timeout = d
	p, err := cl.c.recv("wait for stop", true)
	cl.c.timeout = saved
	if err != nil {
		return err
	}
	s, ok := parseStop(p)
	if !ok {
		return fmt.Errorf("gdb://%s: expected a stop reply, got %q", cl.addr, printable(p))
	}
	cl.noteStop(s)
	return nil
}

// parseThreadID parses "p01.02", "02", "p1.-1".
func parseThreadID(s string) (pid, tid uint64, err error) {
	if rest, ok := strings.CutPrefix(s, "p"); ok {
		ps, ts, ok := strings.Cut(rest, ".")
		if !ok {
			ts = "-1"
		}
		if pid, err = strconv.ParseUint(ps, 16, 64); err != nil {
			return 0, 0, fmt.Errorf("thread id %q: %w", s, err)
		}
		s = ts
	}
	if s == "-1" || s == "0" {
		return pid, 0, nil
	}
	tid, err = strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("thread id %q: %w", s, err)
	}
	return pid, tid, nil
}

// refreshThreads lists the threads with qfThreadInfo/qsThreadInfo and
// fetches their qThreadExtraInfo.
func (cl *Client) refreshThreads() ([]ThreadInfo, error) {
	if err := cl.halted("qfThreadInfo"); err != nil {
		return nil, err
	}
	var list []ThreadInfo
	op := "qfThreadInfo"
	for i := 0; i < 4096; i++ {
		p, err := cl.c.request(op, []byte(op))
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			if op == "qfThreadInfo" {
				// No thread support: one implicit thread.
				list = append(list, ThreadInfo{ID: "1", TID: 1})
			}
			break
		}
		if p[0] == 'l' {
			break
		}
		if p[0] != 'm' {
			return nil, fmt.Errorf("%s: unexpected reply %q", op, printable(p))
		}
		for _, id := range strings.Split(string(p[1:]), ",") {
			pid, tid, err := parseThreadID(id)
			if err != nil {
				return nil, err
			}
			list = append(list, ThreadInfo{ID: id, PID: pid, TID: tid})
		}
		op = "qsThreadInfo"
	}
	for i := range list {
		op := "qThreadExtraInfo," + list[i].ID
		p, err := cl.c.request(op, []byte(op))
		if err != nil {
			if cl.c.err != nil {
				return nil, err
			}
			continue
		}
		if b, err := hex.DecodeString(string(p)); err == nil {
			list[i].Extra = strings.TrimSpace(string(b))
		}
	}
	cl.threads = list
	return list, nil
}

// Threads lists the stub's threads (vCPUs) with their extra info. The guest
// must be halted.
func (cl *Client) Threads() ([]ThreadInfo, error) { return cl.refreshThreads() }

// selectThread makes thread current for g/G/p/P/m/M with Hg.
func (cl *Client) selectThread(thread string) error {
	if thread == "" || thread == cl.gThread {
		return nil
	}
	op := "Hg" + thread
	p, err := cl.c.request(op, []byte(op))
	if err != nil {
		return err
	}
	if string(p) != "OK" {
		return fmt.Errorf("%s: unexpected reply %q", op, printable(p))
	}
	cl.gThread = thread
	return nil
}

// ReadRegisters returns a thread's full g packet as bytes, laid out as
// Target.Regs describes. Registers a short reply omits are read with p.
func (cl *Client) ReadRegisters(thread string) ([]byte, error) {
	if err := cl.halted("g"); err != nil {
		return nil, err
	}
	if b, ok := cl.gcache[thread]; ok && thread != "" {
		return b, nil
	}
	if err := cl.selectThread(thread); err != nil {
		return nil, err
	}
	p, err := cl.c.request("g", []byte("g"))
	if err != nil {
		return nil, err
	}
	b, err := hexBytes("g", p)
	if err != nil {
		return nil, err
	}
	if len(b) < cl.Target.GSize {
		full := make([]byte, cl.Target.GSize)
		copy(full, b)
		for _, r := range cl.Target.Regs {
			if r.Offset+r.Size() <= len(b) {
				continue
			}
			v, err := cl.ReadRegister(thread, r.Num)
			if err != nil {
				if errors.Is(err, ErrUnsupported) {
					continue
				}
				return nil, err
			}
			copy(full[r.Offset:r.Offset+r.Size()], v)
		}
		b = full
	}
	if thread != "" {
		cl.gcache[thread] = b
	}
	return b, nil
}

// ReadRegister reads one register with p. QEMU answers p only after the
// client has read target.xml, which Dial does.
func (cl *Client) ReadRegister(thread string, num int) ([]byte, error) {
	if err := cl.halted("p"); err != nil {
		return nil, err
	}
	if err := cl.selectThread(thread); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("p%x", num)
	p, err := cl.c.request(op, []byte(op))
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrUnsupported)
	}
	return hexBytes(op, p)
}

// WriteRegister writes one register with P; if the stub lacks P it writes
// the whole set with G.
func (cl *Client) WriteRegister(thread string, num int, val []byte) error {
	if err := cl.halted("P"); err != nil {
		return err
	}
	if err := cl.selectThread(thread); err != nil {
		return err
	}
	delete(cl.gcache, thread)
	op := fmt.Sprintf("P%x=%x", num, val)
	p, err := cl.c.request(op, []byte(op))
	if err != nil {
		return err
	}
	if string(p) == "OK" {
		return nil
	}
	if len(p) != 0 {
		return fmt.Errorf("%s: unexpected reply %q", op, printable(p))
	}
	// No P: read-modify-write the g packet.
	var reg *Reg
	for i := range cl.Target.Regs {
		if cl.Target.Regs[i].Num == num {
			reg = &cl.Target.Regs[i]
		}
	}
	if reg == nil {
		return fmt.Errorf("%s: no register number %d in the target description", op, num)
	}
	all, err := cl.ReadRegisters(thread)
	if err != nil {
		return err
	}
	all = append([]byte(nil), all...)
	copy(all[reg.Offset:reg.Offset+reg.Size()], val)
	delete(cl.gcache, thread)
	return cl.WriteRegisters(thread, all)
}

// WriteRegisters writes the full register set with G.
func (cl *Client) WriteRegisters(thread string, all []byte) error {
	if err := cl.halted("G"); err != nil {
		return err
	}
	if err := cl.selectThread(thread); err != nil {
		return err
	}
	delete(cl.gcache, thread)
	op := "G"
	p, err := cl.c.request(op, []byte(fmt.Sprintf("G%x", all)))
	if err != nil {
		return err
	}
	if string(p) != "OK" {
		return fmt.Errorf("G: unexpected reply %q", printable(p))
	}
	return nil
}

const pageSize = 4096

// maxMem is the largest memory payload that fits a packet in hex.
func (cl *Client) maxMem() int {
	n := (cl.packetSize - 32) / 2
	if n < 16 {
		n = 16
	}
	return n
}

// ReadMemory reads guest virtual memory (through the current vCPU's page
// tables). Requests never cross a page, so a read that reaches an unmapped
// page returns the bytes before it and an error matching
// tracer.ErrUnmapped (QEMU answers E14).
func (cl *Client) ReadMemory(addr uint64, p []byte) (int, error) {
	if err := cl.halted("m"); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		size := min(len(p)-n, cl.maxMem(), int(pageSize-a%pageSize))
		op := fmt.Sprintf("m%x,%x", a, size)
		r, err := cl.c.request(op, []byte(op))
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				return n, fmt.Errorf("read %#x: %w (%w)", a, tracer.ErrUnmapped, err)
			}
			return n, err
		}
		if len(r) == 0 {
			return n, fmt.Errorf("read %#x: %w (empty reply to %s)", a, tracer.ErrUnmapped, op)
		}
		b, err := hexBytes(op, r)
		if err != nil {
			return n, err
		}
		if len(b) > size {
			b = b[:size]
		}
		n += copy(p[n:], b)
		if len(b) < size {
			return n, fmt.Errorf("read %#x: %w (stub returned %d of %d bytes)", a+uint64(len(b)), tracer.ErrUnmapped, len(b), size)
		}
	}
	return n, nil
}

// WriteMemory writes guest virtual memory with M.
func (cl *Client) WriteMemory(addr uint64, p []byte) (int, error) {
	if err := cl.halted("M"); err != nil {
		return 0, err
	}
	clear(cl.gcache)
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		size := min(len(p)-n, cl.maxMem()-16, int(pageSize-a%pageSize))
		op := fmt.Sprintf("M%x,%x", a, size)
		r, err := cl.c.request(op, []byte(fmt.Sprintf("%s:%x", op, p[n:n+size])))
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				return n, fmt.Errorf("write %#x: %w (%w)", a, tracer.ErrUnmapped, err)
			}
			return n, err
		}
		if string(r) != "OK" {
			return n, fmt.Errorf("%s: unexpected reply %q", op, printable(r))
		}
		n += size
	}
	return n, nil
}

// BreakpointKind selects Z0 (software) or Z1 (hardware) breakpoints.
type BreakpointKind int

// Breakpoint kinds, numbered as the Z packet numbers them.
const (
	SoftwareBreakpoint BreakpointKind = 0
	HardwareBreakpoint BreakpointKind = 1
)

func (cl *Client) bpLen() int {
	if cl.Target.Arch == tracer.ArchARM64 {
		return 4
	}
	return 1
}

// SetBreakpoint inserts a breakpoint with Z0 or Z1.
func (cl *Client) SetBreakpoint(kind BreakpointKind, addr uint64) error {
	return cl.zpacket('Z', kind, addr)
}

// ClearBreakpoint removes a breakpoint with z0 or z1.
func (cl *Client) ClearBreakpoint(kind BreakpointKind, addr uint64) error {
	return cl.zpacket('z', kind, addr)
}

func (cl *Client) zpacket(z byte, kind BreakpointKind, addr uint64) error {
	op := fmt.Sprintf("%c%d,%x,%x", z, kind, addr, cl.bpLen())
	if err := cl.halted(op); err != nil {
		return err
	}
	p, err := cl.c.request(op, []byte(op))
	if err != nil {
		return err
	}
	switch string(p) {
	case "OK":
		return nil
	case "":
		return fmt.Errorf("%s: %w", op, ErrUnsupported)
	}
	return fmt.Errorf("%s: unexpected reply %q", op, printable(p))
}

// Monitor sends a monitor command (qRcmd): for QEMU, an HMP command such as
// "info registers". Output arrives as O packets and ends with OK.
func (cl *Client) Monitor(cmd string) (string, error) {
	op := "qRcmd," + cmd
	if err := cl.halted(op); err != nil {
		return "", err
	}
	if err := cl.c.send(op, []byte(fmt.Sprintf("qRcmd,%x", cmd))); err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		p, err := cl.c.recv(op, false)
		if err != nil {
			return out.String(), err
		}
		switch {
		case string(p) == "OK":
			return out.String(), nil
		case len(p) == 0:
			return "", fmt.Errorf("%s: %w", op, ErrUnsupported)
		case p[0] == 'O' && string(p) != "OK":
			b, err := hex.DecodeString(string(p[1:]))
			if err != nil {
				return out.String(), fmt.Errorf("%s: bad output packet: %w", op, err)
			}
			out.Write(b)
		default:
			if err := replyError(op, p); err != nil {
				return out.String(), err
			}
			// Some stubs answer with the hex output directly.
			if b, err := hex.DecodeString(string(p)); err == nil {
				out.Write(b)
				return out.String(), nil
			}
			return out.String(), fmt.Errorf("%s: unexpected reply %q", op, printable(p))
		}
	}
}

// Detach releases the guest and leaves it running: "D;pid" when
// multiprocess was negotiated (QEMU answers a bare D with E22 then), else
// "D". A running guest is halted first, since any byte would stop it and be
// lost. The connection is closed afterwards.
func (cl *Client) Detach() error {
	if cl.detached {
		return nil
	}
	if cl.c.err != nil {
		return cl.c.err
	}
	if err := cl.Halt(); err != nil {
		cl.c.close()
		return err
	}
	var cmds []string
	if cl.multiprocess {
		pid := uint64(1)
		if len(cl.threads) > 0 && cl.threads[0].PID != 0 {
			pid = cl.threads[0].PID
		}
		cmds = append(cmds, fmt.Sprintf("D;%x", pid))
	}
	cmds = append(cmds, "D")
	var err error
	for _, cmd := range cmds {
		var p []byte
		p, err = cl.c.request(cmd, []byte(cmd))
		if err == nil && string(p) == "OK" {
			cl.detached = true
			cl.c.close()
			return nil
		}
		if cl.c.err != nil {
			break
		}
		if err == nil {
			err = fmt.Errorf("%s: unexpected reply %q", cmd, printable(p))
		}
	}
	cl.c.close()
	return fmt.Errorf("gdb://%s: detach: %w (the guest may be left paused; QEMU's `cont` monitor command resumes it)", cl.addr, err)
}

// Close closes the connection without detaching. A QEMU guest that was
// halted stays paused: use Detach to leave it running.
func (cl *Client) Close() error { return cl.c.close() }
