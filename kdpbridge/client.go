package kdpbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// Client defaults, LLDB's own.
const (
	// DefaultTimeout is how long the client waits for a reply before it
	// retransmits (LLDB's plugin.process.kdp-remote.packet-timeout).
	DefaultTimeout = 5 * time.Second
	// DefaultTries is how many times a request is sent before the client
	// gives up.
	DefaultTries = 3
	// DefaultChunk is the most bytes one READMEM request asks for (LLDB reads
	// 512-byte chunks; a stub accepts up to kdp.MaxData).
	DefaultChunk = 512
	// LLDBThreadCPU is the cpu field LLDB puts in READREGS and WRITEREGS: its
	// thread ID for the one kernel thread. XNU ignores the field.
	LLDBThreadCPU = 1
)

// Client errors. Errors returned by a Client wrap one of these, a
// *TimeoutError, a *kdp.ProtocolError or a context error; match them with
// errors.Is and errors.As.
var (
	// ErrNotAnswering is what a *TimeoutError unwraps to.
	ErrNotAnswering = errors.New("peer not answering")
	// ErrRunning means a request was attempted while the target runs. KDP
	// cannot interrupt a running kernel: wait for it to trap (WaitException).
	ErrRunning = errors.New("target is running")
	// ErrNotRunning means WaitException was called while the target is
	// halted, so no exception can come.
	ErrNotRunning = errors.New("target is not running")
	// ErrNoStubBreakpoints means the stub does not manage breakpoints (VERSION
	// feature bit 0 is clear); it wraps errors.ErrUnsupported.
	ErrNoStubBreakpoints = fmt.Errorf("stub does not manage breakpoints (%w)", errors.ErrUnsupported)
	// ErrClosed means the client was closed; it wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("kdp client closed: %w", net.ErrClosed)
)

// TimeoutError reports a request that got no matching reply after every try.
type TimeoutError struct {
	Addr    string        // the peer, HOST:PORT
	Request kdp.Request   // what was asked
	Tries   int           // how many times it was sent
	PerTry  time.Duration // how long each try waited
	Hint    string        // what to check, without parentheses
}

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("kdp %v: peer not answering at %s after %d tries of %v", e.Request, e.Addr, e.Tries, e.PerTry)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns ErrNotAnswering.
func (e *TimeoutError) Unwrap() error { return ErrNotAnswering }

// Timeout reports true, as net.Error does for timeouts.
func (e *TimeoutError) Timeout() bool { return true }

const (
	hintConnect = "is the target's debug= boot-arg set and the kernel halted, waiting for a debugger?"
	hintHalted  = "is the target still halted? a KDP stub only listens while halted"
	hintResume  = "the target may be running if only the reply was lost: WaitException catches its next trap"
)

// ClientOptions configures Connect. The zero value gives LLDB's behaviour.
type ClientOptions struct {
	Timeout time.Duration // per try; DefaultTimeout if 0
	Tries   int           // sends per request; DefaultTries if 0
	// Chunk is the most bytes one memory read asks for; DefaultChunk if 0,
	// at most kdp.MaxData. Writes go in chunks of kdp.MaxData.
	Chunk int
	// LocalAddr is the local UDP address to bind ("" = any address, or
	// 127.0.0.1 when the peer is on loopback, as LLDB does; port 0 =
	// ephemeral). Its port is announced as both the reply and the exception
	// port.
	LocalAddr string
	// Logf, if set, is called for every datagram sent and received.
	Logf func(format string, args ...any)
}

// SessionInfo is what the handshake learnt about the target.
type SessionInfo struct {
	Version       uint32 // protocol version; 11 or more enables the 64-bit requests
	Feature       uint32 // kdp.FeatureBreakpoints if the stub manages breakpoints
	CPUMask       uint32 // one bit per CPU; RESUMECPUS sends it
	CPUType       uint32 // kdp.CPUTypeX86_64, kdp.CPUTypeARM64, ...
	CPUSubtype    uint32
	KernelVersion string // "Darwin Kernel Version ...; UUID=...; stext=0x..."
}

// Uses64 reports whether the stub takes the 64-bit memory and breakpoint
// requests (protocol version 11 or more).
func (s SessionInfo) Uses64() bool { return s.Version >= 11 }

// StubBreakpoints reports whether the stub manages breakpoints.
func (s SessionInfo) StubBreakpoints() bool { return s.Feature&kdp.FeatureBreakpoints != 0 }

// Exception is a stop reported by the target: the entries of a KDP_EXCEPTION
// notification, or a KDP_TERMINATION.
type Exception struct {
	Seq        uint8         // the notification's sequence number
	Info       []kdp.ExcInfo // one entry per CPU (XNU: one)
	Terminated bool          // a TERMINATION notification, not an exception
	TermCode   uint32        // kdp.TermExit, ... when Terminated
	ExitCode   uint32
}

type clientState uint8

const (
	clientHalted  clientState = iota
	clientRunning             // RESUMECPUS answered: the target is deaf until it traps
	clientUnknown             // RESUMECPUS got no reply: running or still halted
)

// Client speaks KDP to one stub over UDP, as LLDB's kdp-remote does: one
// socket, its port announced as reply and exception port; every request sent
// up to Tries times with the same sequence number; stale replies skipped;
// exception notifications acknowledged as soon as they arrive. For the same
// operations it sends the same bytes as LLDB 19.
//
// Where LLDB leaves a session broken or silently wrong, the client differs:
//   - a request that got no reply does not use up its sequence number; the
//     next request first sends a harmless VERSION with that number, which the
//     stub either runs or answers from its saved reply, so the client learns
//     which number the stub expects (LLDB's session is stuck for good when a
//     request is lost);
//   - a reply with a newer sequence number is skipped, not taken as failure;
//   - WriteMem is split into kdp.MaxData chunks (LLDB sends one request,
//     which a stub refuses above 1024 bytes);
//   - with a version 10 stub, addresses beyond 32 bits are refused (LLDB
//     truncates them);
//   - if RESUMECPUS gets no reply, the target may or may not be running:
//     both WaitException and further requests are allowed.
//
// A Client is safe for concurrent use; requests are serialised.
type Client struct {
	conn  *net.UDPConn
	raddr *net.UDPAddr
	addr  string // HOST:PORT as given, for messages
	opts  ClientOptions

	mu       sync.Mutex // serialises requests; guards the fields below
	seq      uint8      // the next request's sequence number
	key      uint32
	unsynced bool // a request went unanswered: the stub expects seq or seq+1
	probeAlt bool // resync alternates its probe's seq after 255
	state    clientState
	info     SessionInfo
	infoCopy atomic.Pointer[SessionInfo] // for Info, which must not wait for a request

	replies chan []byte // reply datagrams from the reader

	excMu    sync.Mutex
	excs     chan Exception // undelivered stops, oldest first
	lastExc  int            // sequence of the last delivered notification, -1 for none
	done     chan struct{}
	closeErr error
	once     sync.Once
	wg       sync.WaitGroup
}

// Connect opens a KDP session with the stub at addr ("HOST" or "HOST:PORT",
// port kdp.Port by default) with LLDB's handshake: REATTACH (seq 0, key 0),
// then, with the key of the REATTACH reply and the sequence restarted at 0,
// CONNECT, VERSION, HOSTINFO and KERNELVERSION. The target must be halted
// and waiting for a debugger.
func Connect(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	c, err := newClient(addr, opts)
	if err != nil {
		return nil, err
	}
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(addr string, opts ClientOptions) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Tries <= 0 {
		opts.Tries = DefaultTries
	}
	if opts.Chunk <= 0 {
		opts.Chunk = DefaultChunk
	}
	opts.Chunk = min(opts.Chunk, kdp.MaxData)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(kdp.Port))
	}
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("kdp connect %s: %w", addr, err)
	}
	var laddr *net.UDPAddr
	switch {
	case opts.LocalAddr != "":
		if laddr, err = net.ResolveUDPAddr("udp4", opts.LocalAddr); err != nil {
			return nil, fmt.Errorf("kdp connect %s: local address: %w", addr, err)
		}
	case raddr.IP.IsLoopback():
		laddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	conn, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, fmt.Errorf("kdp connect %s: %w", addr, err)
	}
	c := &Client{
		conn:    conn,
		raddr:   raddr,
		addr:    addr,
		opts:    opts,
		replies: make(chan []byte, 64),
		excs:    make(chan Exception, 16),
		lastExc: -1,
		done:    make(chan struct{}),
	}
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

// LocalPort is the UDP port the client announces for replies and exceptions.
func (c *Client) LocalPort() uint16 { return uint16(c.conn.LocalAddr().(*net.UDPAddr).Port) }

// Addr returns the peer's address, HOST:PORT.
func (c *Client) Addr() string { return c.addr }

func (c *Client) handshake(ctx context.Context) error {
	port := c.LocalPort()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq, c.key, c.unsynced, c.state = 0, 0, false, clientHalted
	c.resetExceptions()
	var rr kdp.ReattachReply
	if err := c.roundTrip(ctx, &kdp.ReattachRequest{ReplyPort: port}, &rr, hintConnect); err != nil {
		return fmt.Errorf("kdp connect: %w", err)
	}
	// LLDB adopts the key of the REATTACH reply and restarts its sequence.
	c.seq, c.key, c.unsynced = 0, rr.Key, false
	var cr kdp.ConnectReply
	// Like LLDB, ignore the CONNECT reply's error code: XNU answers a
	// duplicate CONNECT with 0 and another debugger's session would have been
	// torn down by the REATTACH.
	if err := c.roundTrip(ctx, &kdp.ConnectRequest{ReplyPort: port, ExcPort: port, Greeting: kdp.Greeting}, &cr, hintConnect); err != nil {
		return fmt.Errorf("kdp connect: %w", err)
	}
	var vr kdp.VersionReply
	if err := c.roundTrip(ctx, &kdp.VersionRequest{}, &vr, hintHalted); err != nil {
		return fmt.Errorf("kdp connect: %w", err)
	}
	var hr kdp.HostInfoReply
	if err := c.roundTrip(ctx, &kdp.HostInfoRequest{}, &hr, hintHalted); err != nil {
		return fmt.Errorf("kdp connect: %w", err)
	}
	var kr kdp.KernelVersionReply
	if err := c.roundTrip(ctx, &kdp.KernelVersionRequest{}, &kr, hintHalted); err != nil {
		return fmt.Errorf("kdp connect: %w", err)
	}
	c.info = SessionInfo{
		Version: vr.Version, Feature: vr.Feature,
		CPUMask: hr.CPUMask, CPUType: hr.CPUType, CPUSubtype: hr.CPUSubtype,
		KernelVersion: kr.Version,
	}
	info := c.info
	c.infoCopy.Store(&info)
	return nil
}

// Info returns what the handshake learnt about the target.
func (c *Client) Info() SessionInfo {
	if p := c.infoCopy.Load(); p != nil {
		return *p
	}
	return SessionInfo{}
}

// Version asks for the protocol version and feature bits.
func (c *Client) Version(ctx context.Context) (version, feature uint32, err error) {
	var r kdp.VersionReply
	if err := c.do(ctx, &kdp.VersionRequest{}, &r); err != nil {
		return 0, 0, err
	}
	return r.Version, r.Feature, nil
}

// HostInfo asks for the CPU mask, type and subtype.
func (c *Client) HostInfo(ctx context.Context) (cpuMask, cpuType, cpuSubtype uint32, err error) {
	var r kdp.HostInfoReply
	if err := c.do(ctx, &kdp.HostInfoRequest{}, &r); err != nil {
		return 0, 0, 0, err
	}
	return r.CPUMask, r.CPUType, r.CPUSubtype, nil
}

// KernelVersion asks for the kernel version string.
func (c *Client) KernelVersion(ctx context.Context) (string, error) {
	var r kdp.KernelVersionReply
	if err := c.do(ctx, &kdp.KernelVersionRequest{}, &r); err != nil {
		return "", err
	}
	return r.Version, nil
}

// ReadRegs reads the thread state of a flavor (kdp.X86ThreadState64, ...)
// as the stub's raw image. LLDB passes cpu = LLDBThreadCPU. As in LLDB, a
// non-empty image is success whatever the error field says.
func (c *Client) ReadRegs(ctx context.Context, cpu, flavor uint32) ([]byte, error) {
	var r kdp.ReadRegsReply
	if err := c.do(ctx, &kdp.ReadRegsRequest{CPU: cpu, Flavor: flavor}, &r); err != nil {
		return nil, err
	}
	if len(r.State) == 0 {
		op := fmt.Sprintf("read registers of cpu %d flavor %d", cpu, flavor)
		if r.Error == kdp.NoError {
			return nil, fmt.Errorf("kdp READREGS: %s: empty register image without an error code", op)
		}
		return nil, &kdp.ProtocolError{Op: op, Request: kdp.ReadRegs, Code: r.Error}
	}
	return r.State, nil
}

// WriteRegs writes a thread-state image of a flavor.
func (c *Client) WriteRegs(ctx context.Context, cpu, flavor uint32, state []byte) error {
	var r kdp.WriteRegsReply
	if err := c.do(ctx, &kdp.WriteRegsRequest{CPU: cpu, Flavor: flavor, State: state}, &r); err != nil {
		return err
	}
	if r.Error != kdp.NoError {
		return &kdp.ProtocolError{Op: fmt.Sprintf("write registers of cpu %d flavor %d", cpu, flavor), Request: kdp.WriteRegs, Code: r.Error}
	}
	return nil
}

// ReadMem reads len(buf) bytes at addr in chunks of ClientOptions.Chunk
// bytes, with READMEM64 (or READMEM when the stub's version is below 11; the
// address must then fit 32 bits). It returns how many bytes were read; n <
// len(buf) comes with an error. As in LLDB, a chunk that returns some bytes
// is a success whatever the error field says; the read stops after the first
// short chunk. A short chunk with error 0 (arm64 XNU never reports memory
// errors) is reported as kdp.ErrBadAccess.
func (c *Client) ReadMem(ctx context.Context, addr uint64, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		want := min(len(buf)-n, c.opts.Chunk)
		got, code, req, err := c.readChunk(ctx, addr+uint64(n), buf[n:n+want])
		n += got
		if err != nil {
			return n, err
		}
		if got < want {
			if code == kdp.NoError {
				code = kdp.ErrBadAccess
			}
			return n, &kdp.ProtocolError{Op: fmt.Sprintf("read %d bytes at %#x (%d read)", len(buf), addr, n), Request: req, Code: code}
		}
	}
	return n, nil
}

func (c *Client) readChunk(ctx context.Context, addr uint64, buf []byte) (int, kdp.ErrorCode, kdp.Request, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.info.Uses64() {
		var r kdp.ReadMem64Reply
		if err := c.doLocked(ctx, &kdp.ReadMem64Request{Address: addr, NBytes: uint32(len(buf))}, &r); err != nil {
			return 0, 0, kdp.ReadMem64, err
		}
		return copy(buf, r.Data), r.Error, kdp.ReadMem64, nil
	}
	if addr+uint64(len(buf)) > 1<<32 {
		return 0, 0, kdp.ReadMem, fmt.Errorf("kdp READMEM: read at %#x: address beyond 32 bits and the stub speaks protocol version %d (64-bit requests need 11)", addr, c.info.Version)
	}
	var r kdp.ReadMemReply
	if err := c.doLocked(ctx, &kdp.ReadMemRequest{Address: uint32(addr), NBytes: uint32(len(buf))}, &r); err != nil {
		return 0, 0, kdp.ReadMem, err
	}
	return copy(buf, r.Data), r.Error, kdp.ReadMem, nil
}

// WriteMem writes data at addr in chunks of kdp.MaxData bytes (LLDB sends one
// WRITEMEM64 whatever the size, which a stub refuses above kdp.MaxData).
func (c *Client) WriteMem(ctx context.Context, addr uint64, data []byte) error {
	for off := 0; off < len(data); {
		chunk := data[off:min(len(data), off+kdp.MaxData)]
		if err := c.writeChunk(ctx, addr+uint64(off), chunk); err != nil {
			if off > 0 {
				return fmt.Errorf("%w (%d of %d bytes written)", err, off, len(data))
			}
			return err
		}
		off += len(chunk)
	}
	return nil
}

func (c *Client) writeChunk(ctx context.Context, addr uint64, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var code kdp.ErrorCode
	req := kdp.WriteMem64
	if c.info.Uses64() {
		var r kdp.WriteMem64Reply
		if err := c.doLocked(ctx, &kdp.WriteMem64Request{Address: addr, Data: data}, &r); err != nil {
			return err
		}
		code = r.Error
	} else {
		req = kdp.WriteMem
		if addr+uint64(len(data)) > 1<<32 {
			return fmt.Errorf("kdp WRITEMEM: write at %#x: address beyond 32 bits and the stub speaks protocol version %d (64-bit requests need 11)", addr, c.info.Version)
		}
		var r kdp.WriteMemReply
		if err := c.doLocked(ctx, &kdp.WriteMemRequest{Address: uint32(addr), Data: data}, &r); err != nil {
			return err
		}
		code = r.Error
	}
	if code != kdp.NoError {
		return &kdp.ProtocolError{Op: fmt.Sprintf("write %d bytes at %#x", len(data), addr), Request: req, Code: code}
	}
	return nil
}

// SetBreakpoint asks the stub to plant a breakpoint at addr
// (BREAKPOINT64_SET, or BREAKPOINT_SET below version 11). It fails with
// ErrNoStubBreakpoints when the stub does not manage breakpoints; the caller
// then writes a trap instruction itself, as LLDB does.
func (c *Client) SetBreakpoint(ctx context.Context, addr uint64) error {
	return c.breakpoint(ctx, addr, true)
}

// RemoveBreakpoint removes a breakpoint the stub planted at addr.
func (c *Client) RemoveBreakpoint(ctx context.Context, addr uint64) error {
	return c.breakpoint(ctx, addr, false)
}

func (c *Client) breakpoint(ctx context.Context, addr uint64, set bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	verb := "remove"
	if set {
		verb = "set"
	}
	if !c.info.StubBreakpoints() {
		return fmt.Errorf("kdp: %s breakpoint at %#x: %w", verb, addr, ErrNoStubBreakpoints)
	}
	var req kdp.Packet
	var reply kdp.StatusReply
	switch {
	case c.info.Uses64() && set:
		req, reply = &kdp.Breakpoint64SetRequest{Address: addr}, new(kdp.Breakpoint64SetReply)
	case c.info.Uses64():
		req, reply = &kdp.Breakpoint64RemoveRequest{Address: addr}, new(kdp.Breakpoint64RemoveReply)
	case addr > 1<<32-1:
		return fmt.Errorf("kdp: %s breakpoint at %#x: address beyond 32 bits and the stub speaks protocol version %d", verb, addr, c.info.Version)
	case set:
		req, reply = &kdp.BreakpointSetRequest{Address: uint32(addr)}, new(kdp.BreakpointSetReply)
	default:
		req, reply = &kdp.BreakpointRemoveRequest{Address: uint32(addr)}, new(kdp.BreakpointRemoveReply)
	}
	if err := c.doLocked(ctx, req, reply); err != nil {
		return err
	}
	if code := reply.Status(); code != kdp.NoError {
		r, _ := req.Kind()
		return &kdp.ProtocolError{Op: fmt.Sprintf("%s breakpoint at %#x", verb, addr), Request: r, Code: code}
	}
	return nil
}

// Resume resumes every CPU (RESUMECPUS with the HOSTINFO CPU mask). The
// target then ignores every request until it traps: call WaitException. If
// no reply comes, the error is a *TimeoutError and the client lets both
// WaitException and further requests through, since only the reply may have
// been lost.
func (c *Client) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r kdp.ResumeCPUsReply
	err := c.doLockedHint(ctx, &kdp.ResumeCPUsRequest{CPUMask: c.info.CPUMask}, &r, hintResume)
	var te *TimeoutError
	switch {
	case err == nil:
		c.state = clientRunning
	case errors.As(err, &te):
		c.state = clientUnknown
	}
	return err
}

// WaitException waits until the running target traps and returns the stop
// it reports. The notification has already been acknowledged. It returns at
// once with a stop that arrived earlier, and fails with ErrNotRunning when
// the target is halted.
func (c *Client) WaitException(ctx context.Context) (Exception, error) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	select {
	case e := <-c.excs:
		c.stopped()
		return e, nil
	default:
	}
	if st == clientHalted {
		return Exception{}, fmt.Errorf("kdp: wait for exception: %w (resume it first)", ErrNotRunning)
	}
	select {
	case e := <-c.excs:
		c.stopped()
		return e, nil
	case <-ctx.Done():
		return Exception{}, fmt.Errorf("kdp: wait for exception: target still running (KDP cannot interrupt a running kernel): %w", ctx.Err())
	case <-c.done:
		return Exception{}, ErrClosed
	}
}

func (c *Client) stopped() {
	c.mu.Lock()
	c.state = clientHalted
	c.mu.Unlock()
}

// Disconnect ends the session (DISCONNECT; the target resumes) and closes
// the client. As in LLDB, a missing reply is not an error; while the target
// runs nothing is sent, since it would not listen.
func (c *Client) Disconnect(ctx context.Context) error {
	c.mu.Lock()
	var err error
	if c.state != clientRunning {
		var r kdp.DisconnectReply
		err = c.doLocked(ctx, &kdp.DisconnectRequest{}, &r)
		if errors.Is(err, ErrNotAnswering) {
			err = nil
		}
		c.seq = 0
	}
	c.mu.Unlock()
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the socket without telling the target (LLDB's detach while
// running).
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.closeErr = c.conn.Close()
		c.wg.Wait()
	})
	return c.closeErr
}

// RoundTrip sends any request (its Seq and Key are filled) and returns the
// decoded reply, like LLDB's "process plugin packet send". Error fields in
// the reply are returned as they are, not as errors.
func (c *Client) RoundTrip(ctx context.Context, req kdp.Packet) (kdp.Packet, error) {
	r, _ := req.Kind()
	reply, err := kdp.NewPacket(r, true)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, req, reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// do runs one request under the client lock.
func (c *Client) do(ctx context.Context, req, reply kdp.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doLocked(ctx, req, reply)
}

func (c *Client) doLocked(ctx context.Context, req, reply kdp.Packet) error {
	return c.doLockedHint(ctx, req, reply, hintHalted)
}

// doLockedHint checks the run state, resynchronises the sequence if an
// earlier request went unanswered, and runs the request.
func (c *Client) doLockedHint(ctx context.Context, req, reply kdp.Packet, hint string) error {
	if c.state == clientRunning {
		r, _ := req.Kind()
		return fmt.Errorf("kdp %v: %w (KDP cannot interrupt a running kernel; WaitException until it traps)", r, ErrRunning)
	}
	if c.unsynced {
		if err := c.resync(ctx); err != nil {
			return err
		}
	}
	return c.roundTrip(ctx, req, reply, hint)
}

// resync runs after a request with sequence number S went unanswered. The
// stub then expects S (it never saw the request) or S+1 (it ran it and the
// reply was lost). A VERSION request with sequence S is harmless either way:
// the stub runs it, or resends its saved reply to S. Any reply with sequence
// S therefore means the stub now expects S+1. (XNU does no duplicate
// detection while it expects 0, so after S = 255 the probe alternates with
// S+1.)
func (c *Client) resync(ctx context.Context) error {
	base := c.seq
	if base == 255 && c.probeAlt {
		c.seq = 0
	}
	c.probeAlt = !c.probeAlt
	sent := c.seq
	var r kdp.VersionReply
	err := c.exchange(ctx, &kdp.VersionRequest{}, &r, true, hintHalted)
	if err != nil {
		c.seq = base
		return err
	}
	c.seq = sent + 1
	c.unsynced, c.probeAlt = false, false
	return nil
}

// roundTrip sends req with the next sequence number and waits for its reply.
func (c *Client) roundTrip(ctx context.Context, req, reply kdp.Packet, hint string) error {
	err := c.exchange(ctx, req, reply, false, hint)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotAnswering) {
		// The sequence number is not consumed: the stub expects it or the
		// next one, and resync finds out which.
		c.unsynced = true
	}
	return err
}

// exchange sends req with sequence c.seq, retransmits the same bytes up to
// Tries times, and decodes the matching reply into reply. Replies with an
// older sequence number (answers to retransmissions, duplicates) are skipped.
// On success c.seq is advanced (unless anyCode).
func (c *Client) exchange(ctx context.Context, req, reply kdp.Packet, anyCode bool, hint string) error {
	code, _ := req.Kind()
	h := req.Hdr()
	h.Seq, h.Key = c.seq, c.key
	b, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	// Drop replies that arrived while no request was waiting.
	for drained := false; !drained; {
		select {
		case <-c.replies:
		default:
			drained = true
		}
	}
	timer := time.NewTimer(c.opts.Timeout)
	defer timer.Stop()
	for try := 0; try < c.opts.Tries; try++ {
		if try > 0 {
			timer.Reset(c.opts.Timeout)
		}
		c.logf("kdp > %v % x", h, b)
		if _, err := c.conn.WriteToUDP(b, c.raddr); err != nil {
			if c.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("kdp %v: send to %s: %w", code, c.addr, err)
		}
	wait:
		for {
			select {
			case d := <-c.replies:
				rh, err := kdp.PeekHeader(d)
				if err != nil || !rh.Reply {
					continue
				}
				switch diff := int8(rh.Seq - h.Seq); {
				case diff < 0:
					c.logf("kdp: skipping stale reply %v (waiting for seq %d)", &rh, h.Seq)
					continue
				case diff > 0:
					c.logf("kdp: skipping reply %v from the future (waiting for seq %d)", &rh, h.Seq)
					continue
				}
				if anyCode {
					c.logf("kdp: resynchronised on %v", &rh)
					return nil
				}
				if rh.Request != code {
					// The stub resent its saved reply to an earlier request
					// with this seq, so it did not run this one and expects
					// the next seq.
					c.seq++
					return fmt.Errorf("kdp %v: reply seq %d is a %v reply (stub out of step; not run): %w", code, rh.Seq, rh.Request, kdp.ErrWrongPacket)
				}
				c.seq++ // the stub ran the request, whatever its reply says
				if err := reply.UnmarshalBinary(d); err != nil {
					return fmt.Errorf("kdp %v: bad reply from %s: %w", code, c.addr, err)
				}
				return nil
			case <-timer.C:
				break wait
			case <-ctx.Done():
				return fmt.Errorf("kdp %v: %w", code, ctx.Err())
			case <-c.done:
				return ErrClosed
			}
		}
	}
	return &TimeoutError{Addr: c.addr, Request: code, Tries: c.opts.Tries, PerTry: c.opts.Timeout, Hint: hint}
}

func (c *Client) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// readLoop reads every datagram. Replies go to the waiting request;
// exception and termination notifications are acknowledged at once (every
// copy, since the stub retransmits until it sees an ack) and delivered once.
func (c *Client) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, 8192)
	for {
		n, from, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			if c.isClosed() {
				return
			}
			// ICMP errors (port unreachable) surface here on some systems;
			// the request timeout reports the silence.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-c.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		d := buf[:n]
		h, err := kdp.PeekHeader(d)
		if err != nil {
			c.logf("kdp: dropping %d-byte datagram from %v: %v", n, from, err)
			continue
		}
		c.logf("kdp < %v % x", &h, d)
		switch {
		case h.Reply:
			select {
			case c.replies <- append([]byte(nil), d...):
			default: // nobody is reading fast enough; UDP may lose it anyway
			}
		case h.Request == kdp.Exception || h.Request == kdp.Termination:
			c.notification(d, h)
		}
	}
}

// notification acks and delivers an exception or termination notification.
func (c *Client) notification(d []byte, h kdp.Header) {
	var e Exception
	if h.Request == kdp.Exception {
		var p kdp.ExceptionNotification
		if err := p.UnmarshalBinary(d); err != nil {
			c.logf("kdp: bad exception notification: %v", err)
			return
		}
		e = Exception{Seq: h.Seq, Info: p.Info}
	} else {
		var p kdp.TerminationNotification
		if err := p.UnmarshalBinary(d); err != nil {
			c.logf("kdp: bad termination notification: %v", err)
			return
		}
		e = Exception{Seq: h.Seq, Terminated: true, TermCode: p.TermCode, ExitCode: p.ExitCode}
	}
	// LLDB's ack: the notification's header with the reply bit, len copied.
	ack := h
	ack.Reply = true
	b, _ := ack.MarshalBinary()
	if _, err := c.conn.WriteToUDP(b, c.raddr); err != nil && !c.isClosed() {
		c.logf("kdp: ack to %s: %v", c.addr, err)
	}
	c.logf("kdp > ack % x", b)
	c.excMu.Lock()
	defer c.excMu.Unlock()
	if c.lastExc >= 0 && int8(h.Seq-uint8(c.lastExc)) <= 0 {
		return // a retransmission we have acked before
	}
	c.lastExc = int(h.Seq)
	select {
	case c.excs <- e:
	default:
		c.logf("kdp: dropping exception seq %d: %d stops not collected", h.Seq, cap(c.excs))
	}
}

// resetExceptions forgets notifications of a previous session.
func (c *Client) resetExceptions() {
	c.excMu.Lock()
	defer c.excMu.Unlock()
	c.lastExc = -1
	for {
		select {
		case <-c.excs:
		default:
			return
		}
	}
}
