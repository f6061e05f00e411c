package kdpbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
	"github.com/machtrace/machtrace/tracer"
)

// DefaultServerAddr is where `machtrace kdp serve` listens unless told
// otherwise: KDP's port on loopback.
const DefaultServerAddr = "127.0.0.1:41139"

// trapKind says why a running target stopped by itself.
type trapKind uint8

const (
	trapBreakpoint trapKind = iota + 1 // a software breakpoint instruction
	trapStep                           // a single-step (trace) trap
	trapExited                         // the target exited
)

// trap is a stop the watcher saw.
type trap struct {
	thread tracer.ThreadID
	kind   trapKind
}

// TrapWaiter is an optional interface of a tracer.Backend whose threads can
// stop on a breakpoint or single-step trap while the target runs, and say so.
// It uses only tracer types, so a backend in package tracer can implement it.
//
// WaitTrap is called while the target runs (after Continue). While it waits,
// a thread that executes a breakpoint instruction (amd64 int3, arm64 BRK) or
// takes a trace trap (the x86 TF flag) must be held stopped, its SIGTRAP not
// delivered. WaitTrap then stops the whole target, as Stop does, and returns
// that thread, leaving the trap's signal discarded so the next Continue does
// not deliver it (a redelivered SIGTRAP kills the process). The trapped
// thread's PC is as the CPU left it: one past the int3 on amd64, at the BRK
// on arm64. When ctx ends first, WaitTrap returns ctx.Err() and the target
// keeps running; when the target exits, the error wraps tracer.ErrExited.
//
// Backends without it are served by polling (see pollTraps), which works only
// if the backend leaves a thread that trapped stopped until the next Stop.
type TrapWaiter interface {
	WaitTrap(ctx context.Context) (tracer.ThreadID, error)
}

// BreakpointPlanter is an optional interface of a tracer.Backend that plants
// breakpoints itself, invisibly to the target (a GDB stub's Z0, hardware
// breakpoints). The server uses it together with TrapWaiter: target memory
// is then never patched, and a thread stopped by one of these breakpoints
// has its PC at the breakpoint (on amd64 the server moves it one past, as
// int3 leaves it, so that the debugger sees XNU's semantics and rewinds it).
type BreakpointPlanter interface {
	SetBreakpoint(addr uint64) error
	RemoveBreakpoint(addr uint64) error
}

// Stepper is an optional interface of a tracer.Backend that can execute one
// instruction of one thread while the target is stopped, then stop again.
// The server uses it for LLDB's single-step (the x86 trace flag in a
// WRITEREGS); without it, a step degrades into a continue, as it does on
// arm64 XNU.
type Stepper interface {
	Step(tid tracer.ThreadID) error
}

// ServerOptions tune a Server. The zero value is ready to use.
type ServerOptions struct {
	// KernelVersion is the KERNELVERSION string. The default starts with
	// "EFI", which tells LLDB not to search memory for an XNU kernel.
	KernelVersion string
	// ResumeReplyDelay delays the RESUMECPUS reply, which avoids LLDB 19's
	// resume race (its async thread can miss an early reply and hang). Default
	// 200ms; negative means no delay.
	ResumeReplyDelay time.Duration
	// ExceptionRetransmit is the interval between EXCEPTION notifications
	// until one is acknowledged (XNU: about 150ms); ExceptionTries is how many
	// are sent before the session is dropped (XNU: 101).
	ExceptionRetransmit time.Duration
	ExceptionTries      int
	// PollInterval is how often a running target without TrapWaiter is
	// checked for breakpoint hits. Default 20ms.
	PollInterval time.Duration
	// ReplyToSource sends replies and notifications to the UDP source address
	// of the client's datagrams instead of the ports the client announced in
	// CONNECT and REATTACH (XNU's rule). Use it behind NAT or a proxy.
	ReplyToSource bool
	// Logf, when set, receives one line per protocol event.
	Logf func(format string, args ...any)
}

func (o *ServerOptions) withDefaults(t tracer.Target) ServerOptions {
	c := *o
	if c.KernelVersion == "" {
		c.KernelVersion = "EFI machtrace KDP stub: " + t.Describe()
	}
	if c.ResumeReplyDelay == 0 {
		c.ResumeReplyDelay = 200 * time.Millisecond
	} else if c.ResumeReplyDelay < 0 {
		c.ResumeReplyDelay = 0
	}
	if c.ExceptionRetransmit <= 0 {
		c.ExceptionRetransmit = 150 * time.Millisecond
	}
	if c.ExceptionTries <= 0 {
		c.ExceptionTries = 101
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// MaxBreakpoints is the size of the server's breakpoint table, as in XNU.
const MaxBreakpoints = 100

// x86TF is the trace flag in rflags.
const x86TF = 0x100

// serverState is where the server is in XNU's state machine.
type serverState uint8

const (
	stateWait    serverState = iota // halted, no session: only CONNECT/REATTACH seq 0
	stateHalted                     // halted, session: serving requests
	stateRunning                    // target running: deaf, except for a new debugger's REATTACH/CONNECT
	stateNotify                     // halted, sending EXCEPTION until ACKed
)

func (s serverState) String() string {
	return [...]string{"waiting", "halted", "running", "notifying"}[s]
}

// Server serves a tracer.Target over KDP, so that LLDB's kdp-remote (or
// this package's Client) debugs it as if it were an XNU kernel: the target's
// current thread is KDP's one CPU.
//
// It follows XNU's stub: it waits halted for a CONNECT, serves requests while
// halted with XNU's sequence and duplicate rules, runs the target on
// RESUMECPUS and is deaf until the target traps, then sends EXCEPTION
// notifications until one is acknowledged. Where a process target allows more
// than a kernel, it does a little more, and says so: a REATTACH or CONNECT
// that arrives while the target runs halts it (as an NMI would a kernel), and
// a lost RESUMECPUS or DISCONNECT reply is resent when the request is
// repeated.
type Server struct {
	conn net.PacketConn
	t    tracer.Target
	opts ServerOptions

	arch       tracer.Arch
	cpuType    uint32
	cpuSubtype uint32
	trapInsn   []byte
	waiter     bool              // the backend implements TrapWaiter
	planter    BreakpointPlanter // the backend plants breakpoints (with TrapWaiter), or nil

	mu     sync.Mutex
	state  serverState
	closed bool

	// Session, owned by the Serve goroutine.
	connected   bool
	clientAddr  *net.UDPAddr // sender of the accepted CONNECT
	replyPort   uint16
	excPort     uint16
	connSeq     uint8
	key         uint32
	expected    uint8 // the sequence number the next request must carry
	lastReply   []byte
	lastReplyTo net.Addr
	lastReq     kdp.Request
	excSeq      uint8
	excPacket   []byte
	excTries    int
	bps         map[uint64][]byte // address -> original bytes
	tempBps     map[uint64][]byte // the server's own, for an emulated step
	current     tracer.ThreadID
	stepping    bool       // the debugger set the trace flag
	step        *stepState // a step armed with the real trace flag
	held        bool       // the server holds one Suspend of the target
	parser      kdp.Parser

	watchCancel context.CancelFunc
	watchDone   chan watchResult
}

// NewServer returns a server for t on conn. Call Serve to run it.
func NewServer(conn net.PacketConn, t tracer.Target, opts ServerOptions) (*Server, error) {
	arch := t.Arch()
	cpuType, sub, err := cpuTypeOf(arch)
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, t: t, opts: opts.withDefaults(t), arch: arch, cpuType: cpuType, cpuSubtype: sub, bps: map[uint64][]byte{}, tempBps: map[uint64][]byte{}}
	_, s.waiter = t.Backend().(TrapWaiter)
	if bp, ok := t.Backend().(BreakpointPlanter); ok && s.waiter {
		s.planter = bp
	}
	s.trapInsn = trapInstruction(arch, !s.waiter)
	return s, nil
}

// trapInstruction is the software breakpoint the server writes.
//
// With a TrapWaiter backend it is the architecture's trap: int3 on amd64,
// BRK #0 on arm64 (XNU's own stub uses the undefined instruction 0xE7FFDEFE,
// which a Linux process would take as SIGILL).
//
// Without one it is a jump to itself (amd64 "jmp ." EB FE, arm64 "b ."): a
// thread that reaches it spins there, raising no signal, until the polling
// watcher finds its PC on the breakpoint. A backend that delivers every
// signal while the target runs (Linux ptrace does) would otherwise hand the
// trap's SIGTRAP to the process and kill it.
func trapInstruction(a tracer.Arch, spin bool) []byte {
	switch {
	case a == tracer.ArchARM64 && spin:
		return []byte{0x00, 0x00, 0x00, 0x14}
	case a == tracer.ArchARM64:
		return []byte{0x00, 0x00, 0x20, 0xd4}
	case spin:
		return []byte{0xeb, 0xfe}
	}
	return []byte{0xcc}
}

// spinning reports whether breakpoints are self-jumps (no TrapWaiter).
func (s *Server) spinning() bool { return !s.waiter }

// ListenAndServe listens on UDP addr (DefaultServerAddr if empty) and serves
// t until ctx ends. ready, if not nil, receives the bound address once.
func ListenAndServe(ctx context.Context, addr string, t tracer.Target, opts ServerOptions, ready func(net.Addr)) error {
	if addr == "" {
		addr = DefaultServerAddr
	}
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("kdp serve: %w", err)
	}
	defer conn.Close()
	s, err := NewServer(conn, t, opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(conn.LocalAddr())
	}
	return s.Serve(ctx)
}

// State reports the server's state: "waiting", "halted", "running" or
// "notifying".
func (s *Server) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.String()
}

func (s *Server) setState(st serverState) {
	s.mu.Lock()
	if s.state != st {
		s.opts.Logf("kdp server: %s -> %s", s.state, st)
	}
	s.state = st
	s.mu.Unlock()
}

type datagram struct {
	b    []byte
	from net.Addr
}

type watchResult struct {
	trap trap
	err  error // nil with a trap; the target is then stopped
}

// Serve halts the target and serves KDP until ctx ends or the target exits.
// On return every breakpoint is removed and the target runs again (the
// caller detaches or closes it). It returns ctx.Err() on cancellation and an
// error wrapping tracer.ErrExited when the target exited.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.halt(); err != nil {
		return fmt.Errorf("kdp serve: halt %s: %w", s.t.Describe(), err)
	}
	if err := s.pickThread(); err != nil {
		s.release()
		return fmt.Errorf("kdp serve: %w", err)
	}
	s.setState(stateWait)
	s.opts.Logf("kdp server: %s halted, waiting for a debugger on %s", s.t.Describe(), s.conn.LocalAddr())

	pkts := make(chan datagram, 64)
	readDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 65536)
		for {
			n, from, err := s.conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				return
			}
			select {
			case pkts <- datagram{append([]byte(nil), buf[:n]...), from}:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		_ = s.conn.SetReadDeadline(time.Now())
		<-readDone
		_ = s.conn.SetReadDeadline(time.Time{})
	}()

	var excTimer *time.Timer
	for {
		var excC <-chan time.Time
		if s.state == stateNotify {
			if excTimer == nil {
				excTimer = time.NewTimer(s.opts.ExceptionRetransmit)
			}
			excC = excTimer.C
		} else if excTimer != nil {
			excTimer.Stop()
			excTimer = nil
		}
		select {
		case <-ctx.Done():
			s.shutdown()
			return ctx.Err()
		case <-readDone:
			s.shutdown()
			return fmt.Errorf("kdp serve: socket closed")
		case d := <-pkts:
			s.handle(d)
		case r := <-s.watchDone:
			s.watchDone, s.watchCancel = nil, nil
			if err := s.onWatch(r); err != nil {
				s.shutdown()
				return err
			}
		case <-excC:
			excTimer = nil
			s.retransmitException()
		}
	}
}

// halt takes the server's hold on the target. A target that is already
// suspended (a launched process) is adopted as it is.
func (s *Server) halt() error {
	if s.held {
		return nil
	}
	if !s.t.Suspended() {
		if err := s.t.Suspend(); err != nil {
			return err
		}
	}
	s.held = true
	return nil
}

// release drops the server's hold: the target runs.
func (s *Server) release() error {
	if !s.held {
		return nil
	}
	s.held = false
	return s.t.Resume()
}

// pickThread makes the first thread the current one if the current one is
// gone.
func (s *Server) pickThread() error {
	ths, err := s.t.Threads()
	if err != nil {
		return err
	}
	if len(ths) == 0 {
		return fmt.Errorf("%s has no threads: %w", s.t.Describe(), tracer.ErrExited)
	}
	for _, th := range ths {
		if th.ID == s.current {
			return nil
		}
	}
	s.current = ths[0].ID
	return nil
}

// shutdown leaves the target as it found it: breakpoints removed, running.
func (s *Server) shutdown() {
	if r, ok := s.stopWatch(); ok && r.err == nil && r.trap.kind != trapExited {
		s.held = true
	}
	if len(s.bps) > 0 || s.step != nil {
		// Restore the code and flags with the target stopped.
		if err := s.halt(); err != nil {
			s.opts.Logf("kdp server: halt to remove breakpoints: %v", err)
		}
	}
	s.disarmStep()
	s.removeAllBreakpoints()
	if err := s.release(); err != nil && !errors.Is(err, tracer.ErrExited) {
		s.opts.Logf("kdp server: resume on exit: %v", err)
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// send writes b to addr.
func (s *Server) send(b []byte, to net.Addr) {
	if to == nil {
		return
	}
	if _, err := s.conn.WriteTo(b, to); err != nil {
		s.opts.Logf("kdp server: send to %v: %v", to, err)
	}
}

// portAddr is from's IP with the given port, or from itself with
// ReplyToSource.
func (s *Server) portAddr(from net.Addr, port uint16) net.Addr {
	u, ok := from.(*net.UDPAddr)
	if s.opts.ReplyToSource || !ok || port == 0 {
		return from
	}
	return &net.UDPAddr{IP: u.IP, Port: int(port), Zone: u.Zone}
}

// handle processes one datagram according to the current state.
func (s *Server) handle(d datagram) {
	h, err := kdp.PeekHeader(d.b)
	if err != nil {
		return
	}
	switch s.state {
	case stateNotify:
		if h.Reply && h.Request == kdp.Exception {
			if h.Seq == s.excSeq {
				s.opts.Logf("kdp server: EXCEPTION seq %d acknowledged", h.Seq)
				s.excSeq++
				s.excPacket = nil
				s.setState(stateHalted)
			}
			return
		}
		if !h.Reply && h.Request == kdp.Reattach {
			s.dispatch(d, h)
		}
		return
	case stateRunning:
		if h.Reply {
			return
		}
		// A repeated RESUMECPUS or DISCONNECT whose reply was lost: resend.
		if s.lastReply != nil && s.expected != 0 && h.Seq == s.expected-1 && h.Request == s.lastReq {
			s.send(s.lastReply, s.lastReplyTo)
			return
		}
		newDebugger := h.Request == kdp.Reattach || (h.Request == kdp.Connect && !s.connected)
		if !newDebugger || h.Seq != 0 {
			return
		}
		// Not XNU: a process can be halted at will, so a new debugger's
		// REATTACH or CONNECT stops the target like an NMI.
		if err := s.interrupt(); err != nil {
			s.opts.Logf("kdp server: halt for a new debugger: %v", err)
			return
		}
		s.endSession()
		s.setState(stateWait)
		s.expected = 0
		fallthrough
	case stateWait:
		if h.Reply || h.Seq != 0 || (h.Request != kdp.Connect && h.Request != kdp.Reattach) {
			return
		}
		s.dispatch(d, h)
	case stateHalted:
		if h.Reply {
			return
		}
		if h.Request == kdp.Reattach {
			s.expected = h.Seq
		}
		if s.expected != 0 && h.Seq == s.expected-1 {
			s.opts.Logf("kdp server: %v seq %d repeated, resending reply", h.Request, h.Seq)
			s.send(s.lastReply, s.lastReplyTo)
			return
		}
		if h.Seq != s.expected && h.Request != kdp.Connect {
			s.opts.Logf("kdp server: %v: bad sequence %d (want %d), dropped", h.Request, h.Seq, s.expected)
			return
		}
		s.dispatch(d, h)
	}
}

// reply describes the answer to one request.
type reply struct {
	p        kdp.Packet
	to       net.Addr
	sideband bool          // not saved for retransmission, sequence unchanged
	delay    time.Duration // wait before sending
	after    func()        // runs after the reply is sent
}

// dispatch decodes and serves one request whose sequence has been checked.
func (s *Server) dispatch(d datagram, h kdp.Header) {
	p, err := s.parser.Decode(d.b)
	if err != nil {
		s.opts.Logf("kdp server: %v from %v dropped: %v", h.Request, d.from, err)
		return
	}
	r := s.serve(p, d.from)
	if r.p == nil {
		return
	}
	*r.p.Hdr() = h.ReplyHeader()
	b, err := r.p.MarshalBinary()
	if err != nil {
		s.opts.Logf("kdp server: encode %v reply: %v", h.Request, err)
		return
	}
	if r.to == nil {
		r.to = s.portAddr(d.from, s.replyPort)
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	s.send(b, r.to)
	if !r.sideband {
		s.lastReply, s.lastReplyTo, s.lastReq = b, r.to, h.Request
		s.expected = h.Seq + 1
	}
	if r.after != nil {
		r.after()
	}
}

// serve computes the reply to a request.
func (s *Server) serve(p kdp.Packet, from net.Addr) reply {
	switch q := p.(type) {
	case *kdp.ReattachRequest:
		s.opts.Logf("kdp server: REATTACH from %v", from)
		s.endSession()
		return reply{p: &kdp.ReattachReply{}, to: s.portAddr(from, q.ReplyPort), after: func() {
			s.setState(stateWait)
			s.expected = 0
		}}
	case *kdp.ConnectRequest:
		to := s.portAddr(from, q.ReplyPort)
		if s.connected {
			if q.Seq == s.connSeq && q.ReplyPort == s.replyPort && q.ExcPort == s.excPort && q.Key == s.key {
				return reply{p: &kdp.ConnectReply{}, to: to}
			}
			return reply{p: &kdp.ConnectReply{Error: kdp.ErrAlreadyConnected}, to: to, sideband: true}
		}
		s.connected = true
		s.clientAddr, _ = from.(*net.UDPAddr)
		s.replyPort, s.excPort, s.connSeq, s.key = q.ReplyPort, q.ExcPort, q.Seq, q.Key
		s.excSeq = 0
		s.opts.Logf("kdp server: CONNECT from %v (reply port %d, exception port %d)", from, q.ReplyPort, q.ExcPort)
		return reply{p: &kdp.ConnectReply{}, to: to, after: func() { s.setState(stateHalted) }}
	case *kdp.DisconnectRequest:
		s.opts.Logf("kdp server: DISCONNECT; resuming %s", s.t.Describe())
		return reply{p: &kdp.DisconnectReply{}, after: func() {
			s.endSession()
			s.run()
		}}
	case *kdp.HostInfoRequest:
		return reply{p: &kdp.HostInfoReply{CPUMask: 1, CPUType: s.cpuType, CPUSubtype: s.cpuSubtype}}
	case *kdp.VersionRequest:
		return reply{p: &kdp.VersionReply{Version: kdp.ProtocolVersion, Feature: kdp.FeatureBreakpoints}}
	case *kdp.MaxBytesRequest:
		return reply{p: &kdp.MaxBytesReply{MaxBytes: kdp.MaxData}}
	case *kdp.KernelVersionRequest:
		return reply{p: &kdp.KernelVersionReply{Version: s.opts.KernelVersion}}
	case *kdp.RegionsRequest:
		return reply{p: &kdp.RegionsReply{Regions: []kdp.Region{{Address: 0, NBytes: 0xFFFFFFFF, Protection: 7}}}}
	case *kdp.SuspendRequest:
		return reply{p: &kdp.SuspendReply{}}
	case *kdp.ReadMemRequest:
		data, code := s.readMem(uint64(q.Address), q.NBytes)
		return reply{p: &kdp.ReadMemReply{Error: code, Data: data}}
	case *kdp.ReadMem64Request:
		data, code := s.readMem(q.Address, q.NBytes)
		return reply{p: &kdp.ReadMem64Reply{Error: code, Data: data}}
	case *kdp.WriteMemRequest:
		return reply{p: &kdp.WriteMemReply{Error: s.writeMem(uint64(q.Address), q.Data)}}
	case *kdp.WriteMem64Request:
		return reply{p: &kdp.WriteMem64Reply{Error: s.writeMem(q.Address, q.Data)}}
	case *kdp.ReadPhysMem64Request:
		return reply{p: &kdp.ReadPhysMem64Reply{Error: kdp.ErrBadAccess}}
	case *kdp.WritePhysMem64Request:
		return reply{p: &kdp.WritePhysMem64Reply{Error: kdp.ErrBadAccess}}
	case *kdp.ReadIOPortRequest:
		return reply{p: &kdp.ReadIOPortReply{Error: kdp.ErrBadFlavor}}
	case *kdp.WriteIOPortRequest:
		return reply{p: &kdp.WriteIOPortReply{Error: kdp.ErrBadFlavor}}
	case *kdp.ReadMSR64Request:
		return reply{p: &kdp.ReadMSR64Reply{Error: kdp.ErrBadAccess}}
	case *kdp.WriteMSR64Request:
		return reply{p: &kdp.WriteMSR64Reply{Error: kdp.ErrBadAccess}}
	case *kdp.DumpInfoRequest:
		return reply{p: &kdp.DumpInfoReply{Name: q.Name, DestIP: q.DestIP, RouterIP: q.RouterIP, Port: q.Port, Type: kdp.DumpDisable}}
	case *kdp.ReadRegsRequest:
		img, code := s.readRegs(q.Flavor)
		return reply{p: &kdp.ReadRegsReply{Error: code, State: img}}
	case *kdp.WriteRegsRequest:
		return reply{p: &kdp.WriteRegsReply{Error: s.writeRegs(q.Flavor, q.State)}}
	case *kdp.BreakpointSetRequest:
		return reply{p: &kdp.BreakpointSetReply{Error: s.setBreakpoint(uint64(q.Address))}}
	case *kdp.BreakpointRemoveRequest:
		return reply{p: &kdp.BreakpointRemoveReply{Error: s.removeBreakpoint(uint64(q.Address))}}
	case *kdp.Breakpoint64SetRequest:
		return reply{p: &kdp.Breakpoint64SetReply{Error: s.setBreakpoint(q.Address)}}
	case *kdp.Breakpoint64RemoveRequest:
		return reply{p: &kdp.Breakpoint64RemoveReply{Error: s.removeBreakpoint(q.Address)}}
	case *kdp.ResumeCPUsRequest:
		s.opts.Logf("kdp server: RESUMECPUS; running %s", s.t.Describe())
		return reply{p: &kdp.ResumeCPUsReply{}, delay: s.opts.ResumeReplyDelay, after: s.run}
	}
	// LOAD, IMAGEPATH, HOSTREBOOT, EXCEPTION/TERMINATION as requests and
	// anything else: XNU drops them, so does this server.
	s.opts.Logf("kdp server: %v not served", p.Hdr().Request)
	return reply{}
}

// endSession forgets the debugger and removes its breakpoints (XNU does the
// same on DISCONNECT, REATTACH and an unacknowledged exception).
func (s *Server) endSession() {
	s.disarmStep()
	s.removeAllBreakpoints()
	s.connected = false
	s.replyPort, s.excPort, s.connSeq, s.key, s.excSeq = 0, 0, 0, 0, 0
	s.excPacket = nil
	s.stepping = false
}

// interrupt stops a running target (the watcher first).
func (s *Server) interrupt() error {
	if r, ok := s.stopWatch(); ok && r.err == nil {
		s.held = true
		if r.trap.kind != trapExited {
			s.current = r.trap.thread
		}
		return nil
	}
	return s.halt()
}

// readMem reads for a READMEM request: breakpoint bytes are shown as the
// original instruction bytes. It returns what it could read, with
// ErrBadAccess when that is less than asked (x86_64 XNU semantics).
func (s *Server) readMem(addr uint64, n uint32) ([]byte, kdp.ErrorCode) {
	if n > kdp.MaxData {
		return nil, kdp.ErrBadNBytes
	}
	buf := make([]byte, n)
	got, err := s.t.ReadMemory(addr, buf)
	if got < 0 {
		got = 0
	}
	buf = buf[:got]
	s.hideBreakpoints(addr, buf)
	if err != nil || got < int(n) {
		return buf, kdp.ErrBadAccess
	}
	return buf, kdp.NoError
}

// hideBreakpoints replaces trap bytes in buf (read at addr) with the bytes
// they replaced.
func (s *Server) hideBreakpoints(addr uint64, buf []byte) {
	hide(s.bps, addr, buf)
	hide(s.tempBps, addr, buf)
}

func hide(bps map[uint64][]byte, addr uint64, buf []byte) {
	for bp, orig := range bps {
		for i, c := range orig {
			a := bp + uint64(i)
			if a >= addr && a < addr+uint64(len(buf)) {
				buf[a-addr] = c
			}
		}
	}
}

// writeMem writes for a WRITEMEM request, keeping planted breakpoints in
// place (the written bytes become their saved originals).
func (s *Server) writeMem(addr uint64, data []byte) kdp.ErrorCode {
	if len(data) > kdp.MaxData {
		return kdp.ErrBadNBytes
	}
	buf := append([]byte(nil), data...)
	for bp, orig := range s.bps {
		for i := range orig {
			a := bp + uint64(i)
			if a >= addr && a < addr+uint64(len(buf)) {
				orig[i] = buf[a-addr]
				buf[a-addr] = s.trapInsn[i]
			}
		}
	}
	n, err := s.t.WriteMemory(addr, buf)
	if err != nil || n < len(buf) {
		s.opts.Logf("kdp server: write %d bytes at %#x: %d written: %v", len(buf), addr, n, err)
		return kdp.ErrBadAccess
	}
	return kdp.NoError
}

// readRegs answers READREGS for the current thread.
func (s *Server) readRegs(flavor uint32) ([]byte, kdp.ErrorCode) {
	sl := layoutFor(s.arch, flavor)
	if sl == nil {
		return nil, kdp.ErrBadFlavor
	}
	regs, err := s.t.ThreadState(s.current, sl.flavor)
	if err != nil {
		if sl.flavor == tracer.FlavorGeneral {
			s.opts.Logf("kdp server: read registers of thread %d: %v", s.current, err)
			return nil, kdp.ErrBadAccess
		}
		// XNU answers its FP flavors with zeros; so does this server when
		// the backend has no such state.
		return sl.encode(nil), kdp.NoError
	}
	img := sl.encode(regs)
	if s.stepping && sl == x86ThreadState64 {
		img[136] |= x86TF & 0xff
		img[137] |= x86TF >> 8
	}
	return img, kdp.NoError
}

// writeRegs answers WRITEREGS for the current thread. The x86 trace flag is
// kept by the server (it steps the thread itself on resume) rather than
// written into the target, where it would raise a real trap.
func (s *Server) writeRegs(flavor uint32, img []byte) kdp.ErrorCode {
	sl := layoutFor(s.arch, flavor)
	if sl == nil {
		return kdp.ErrBadFlavor
	}
	if sl == x86ThreadState64 && len(img) >= 138 {
		img = append([]byte(nil), img...)
		s.stepping = img[137]&(x86TF>>8) != 0
		img[137] &^= x86TF >> 8
	}
	regs, err := s.t.ThreadState(s.current, sl.flavor)
	if err != nil {
		s.opts.Logf("kdp server: read registers of thread %d: %v", s.current, err)
		return kdp.ErrBadAccess
	}
	sl.apply(regs, img)
	if err := s.t.SetThreadState(s.current, regs); err != nil {
		s.opts.Logf("kdp server: write registers of thread %d: %v", s.current, err)
		return kdp.ErrBadAccess
	}
	return kdp.NoError
}

// setBreakpoint plants a breakpoint as XNU's kdp_set_breakpoint_internal
// does.
func (s *Server) setBreakpoint(addr uint64) kdp.ErrorCode {
	if _, ok := s.bps[addr]; ok {
		return kdp.ErrBreakpointAlreadySet
	}
	orig := make([]byte, len(s.trapInsn))
	n, err := s.t.ReadMemory(addr, orig)
	if err != nil || n < len(orig) {
		return kdp.ErrBadAccess
	}
	if string(orig) == string(s.trapInsn) {
		return kdp.ErrBreakpointAlreadySet
	}
	if len(s.bps) >= MaxBreakpoints {
		return kdp.ErrMaxBreakpoints
	}
	if s.planter != nil {
		if err := s.planter.SetBreakpoint(addr); err != nil {
			s.opts.Logf("kdp server: breakpoint at %#x: %v", addr, err)
			return kdp.ErrBadAccess
		}
		s.bps[addr] = nil // nothing to hide or restore
		s.opts.Logf("kdp server: breakpoint set at %#x by %s", addr, s.t.Describe())
		return kdp.NoError
	}
	if n, err := s.t.WriteMemory(addr, s.trapInsn); err != nil || n < len(s.trapInsn) {
		s.opts.Logf("kdp server: plant breakpoint at %#x: %v", addr, err)
		return kdp.ErrBadAccess
	}
	s.bps[addr] = orig
	s.opts.Logf("kdp server: breakpoint set at %#x", addr)
	return kdp.NoError
}

// removeBreakpoint restores the original bytes.
func (s *Server) removeBreakpoint(addr uint64) kdp.ErrorCode {
	orig, ok := s.bps[addr]
	if !ok {
		return kdp.ErrBreakpointNotFound
	}
	delete(s.bps, addr)
	if s.planter != nil {
		if err := s.planter.RemoveBreakpoint(addr); err != nil {
			s.opts.Logf("kdp server: remove breakpoint at %#x: %v", addr, err)
			return kdp.ErrBadAccess
		}
		return kdp.NoError
	}
	if _, err := s.t.WriteMemory(addr, orig); err != nil {
		s.opts.Logf("kdp server: restore %#x: %v", addr, err)
		return kdp.ErrBadAccess
	}
	s.opts.Logf("kdp server: breakpoint removed at %#x", addr)
	return kdp.NoError
}

func (s *Server) removeAllBreakpoints() {
	addrs := make([]uint64, 0, len(s.bps))
	for a := range s.bps {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	for _, a := range addrs {
		s.removeBreakpoint(a)
	}
}

// run resumes the target (stepping the current thread first if the debugger
// asked for a step) and starts watching it for traps.
func (s *Server) run() {
	s.step = nil
	if s.stepping {
		s.stepping = false
		if st, ok := s.t.Backend().(Stepper); ok {
			if err := st.Step(s.current); err == nil {
				s.notify(trap{thread: s.current, kind: trapStep})
				return
			} else {
				s.opts.Logf("kdp server: step thread %d: %v; continuing instead", s.current, err)
			}
		} else if s.spinning() {
			if err := s.emulateStep(); err != nil {
				s.opts.Logf("kdp server: cannot emulate a step of thread %d (%v); the step becomes a continue", s.current, err)
			}
		} else if err := s.armStep(); err != nil {
			s.opts.Logf("kdp server: %s cannot single-step (%v); the step becomes a continue", s.t.Describe(), err)
		}
	}
	if err := s.release(); err != nil {
		s.opts.Logf("kdp server: resume %s: %v", s.t.Describe(), err)
	}
	s.setState(stateRunning)
	s.startWatch()
}

// stepState is a single-step in progress with the CPU's own trace flag.
type stepState struct {
	tid    tracer.ThreadID
	fromPC uint64
	at     map[uint64]bool // emulated step: the successors holding temporary breakpoints
}

// armStep sets the x86 trace flag in the current thread's real registers
// (TrapWaiter backends): the CPU traps after one instruction and the backend
// reports the trace trap like a breakpoint.
func (s *Server) armStep() error {
	if s.arch != tracer.ArchAMD64 {
		return fmt.Errorf("no trace flag on %s", s.arch)
	}
	regs, err := s.t.ThreadState(s.current, tracer.FlavorGeneral)
	if err != nil {
		return err
	}
	fl, ok := regs.Get("rflags")
	if !ok {
		return errors.New("no rflags register")
	}
	_ = regs.Set("rflags", fl|x86TF)
	if err := s.t.SetThreadState(s.current, regs); err != nil {
		return err
	}
	s.step = &stepState{tid: s.current, fromPC: regs.PC()}
	return nil
}

// disarmStep clears the trace flag set by armStep, or removes the temporary
// breakpoints of an emulated step.
func (s *Server) disarmStep() {
	st := s.step
	s.step = nil
	if st == nil {
		return
	}
	if st.at != nil {
		for a, orig := range s.tempBps {
			if _, err := s.t.WriteMemory(a, orig); err != nil {
				s.opts.Logf("kdp server: restore %#x after a step: %v", a, err)
			}
			delete(s.tempBps, a)
		}
		return
	}
	regs, err := s.t.ThreadState(st.tid, tracer.FlavorGeneral)
	if err != nil {
		return
	}
	if fl, ok := regs.Get("rflags"); ok && fl&x86TF != 0 {
		_ = regs.Set("rflags", fl&^x86TF)
		_ = s.t.SetThreadState(st.tid, regs)
	}
}

// startWatch watches the running target for a trap, with the backend's
// TrapWaiter or by polling.
func (s *Server) startWatch() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan watchResult, 1)
	s.watchCancel, s.watchDone = cancel, done
	tw, _ := s.t.Backend().(TrapWaiter)
	var step *stepState
	if s.step != nil {
		c := *s.step
		if c.at != nil {
			c.at = make(map[uint64]bool, len(s.step.at))
			for a := range s.step.at {
				c.at[a] = true
			}
		}
		step = &c
	}
	bps := make(map[uint64]bool, len(s.bps))
	for a := range s.bps {
		bps[a] = true
	}
	go func() {
		if tw != nil {
			tid, err := tw.WaitTrap(ctx)
			if errors.Is(err, tracer.ErrExited) {
				done <- watchResult{trap: trap{kind: trapExited}}
				return
			}
			done <- watchResult{trap: trap{thread: tid, kind: trapBreakpoint}, err: err}
			return
		}
		done <- pollTraps(ctx, s.t, s.arch, bps, step, s.opts.PollInterval)
	}()
}

// stopWatch stops the watcher. ok reports whether one was running; with
// r.err == nil the watcher saw a trap and the target is stopped, otherwise
// it still runs.
func (s *Server) stopWatch() (r watchResult, ok bool) {
	if s.watchCancel == nil {
		return watchResult{}, false
	}
	s.watchCancel()
	r = <-s.watchDone
	s.watchCancel, s.watchDone = nil, nil
	return r, true
}

// pollTraps is the watcher for backends without TrapWaiter, whose
// breakpoints are self-jumps. Every interval it suspends the target and looks
// for a thread spinning on a breakpoint (or, during an emulated step, the
// stepped thread spinning on one of the step's temporary breakpoints), and
// resumes the target otherwise. A spinning thread waits for as long as it
// takes, so no hit is missed; it burns its CPU until found, which the
// interval bounds. A suspension costs microseconds per thread with ptrace.
func pollTraps(ctx context.Context, t tracer.Target, arch tracer.Arch, bps map[uint64]bool, step *stepState, every time.Duration) watchResult {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return watchResult{err: ctx.Err()}
		case <-tick.C:
		}
		if len(bps) == 0 && step == nil {
			if _, err := t.Threads(); errors.Is(err, tracer.ErrExited) {
				return watchResult{trap: trap{kind: trapExited}}
			}
			continue
		}
		if err := t.Suspend(); err != nil {
			if errors.Is(err, tracer.ErrExited) {
				return watchResult{trap: trap{kind: trapExited}}
			}
			continue
		}
		if step != nil {
			if r, err := t.ThreadState(step.tid, tracer.FlavorGeneral); err == nil && step.at[r.PC()] {
				return watchResult{trap: trap{thread: step.tid, kind: trapStep}}
			}
		}
		if tid, ok := findHit(t, arch, bps); ok {
			return watchResult{trap: trap{thread: tid, kind: trapBreakpoint}}
		}
		if err := t.Resume(); errors.Is(err, tracer.ErrExited) {
			return watchResult{trap: trap{kind: trapExited}}
		}
	}
}

// findHit returns a thread spinning on a breakpoint. On amd64 it is moved one
// past the breakpoint, where int3 would have left it, so the debugger sees
// XNU's semantics (EXC_I386_BPTFLT, RIP = breakpoint + 1) and rewinds it.
func findHit(t tracer.Target, arch tracer.Arch, bps map[uint64]bool) (tracer.ThreadID, bool) {
	ths, err := t.Threads()
	if err != nil {
		return 0, false
	}
	for _, th := range ths {
		r, err := t.ThreadState(th.ID, tracer.FlavorGeneral)
		if err != nil || !bps[r.PC()] {
			continue
		}
		if arch == tracer.ArchAMD64 {
			if err := r.Set("rip", r.PC()+1); err == nil {
				_ = t.SetThreadState(th.ID, r)
			}
		}
		return th.ID, true
	}
	return 0, false
}

// onWatch handles the watcher's result: a trap becomes an EXCEPTION.
func (s *Server) onWatch(r watchResult) error {
	if r.err != nil {
		// The watcher failed with the target running; watch again.
		s.opts.Logf("kdp server: watching %s: %v", s.t.Describe(), r.err)
		s.startWatch()
		return nil
	}
	if r.trap.kind == trapExited {
		s.held = false
		s.sendTermination(0)
		s.bps, s.tempBps, s.step = map[uint64][]byte{}, map[uint64][]byte{}, nil // the memory is gone
		return fmt.Errorf("kdp serve: %s: %w", s.t.Describe(), tracer.ErrExited)
	}
	s.held = true
	s.current = r.trap.thread
	if s.planter != nil && s.arch == tracer.ArchAMD64 {
		// A stub-planted breakpoint leaves the PC on it; int3 would have
		// left it one past, which is what the debugger rewinds.
		if regs, err := s.t.ThreadState(r.trap.thread, tracer.FlavorGeneral); err == nil {
			if _, ok := s.bps[regs.PC()]; ok {
				_ = regs.Set("rip", regs.PC()+1)
				_ = s.t.SetThreadState(r.trap.thread, regs)
			}
		}
	}
	if st := s.step; st != nil {
		s.disarmStep()
		if r.trap.thread == st.tid && r.trap.kind == trapBreakpoint && !s.atBreakpoint(st.tid) {
			r.trap.kind = trapStep // a TrapWaiter reporting the trace trap
		}
	}
	s.notify(r.trap)
	return nil
}

// atBreakpoint reports whether a stopped thread's PC shows a breakpoint hit.
func (s *Server) atBreakpoint(tid tracer.ThreadID) bool {
	r, err := s.t.ThreadState(tid, tracer.FlavorGeneral)
	if err != nil {
		return false
	}
	pc := r.PC()
	if s.arch == tracer.ArchAMD64 {
		pc--
	}
	_, ok := s.bps[pc]
	return ok
}

// excInfo maps a trap onto the Mach exception LLDB expects.
func (s *Server) excInfo(tr trap) kdp.ExcInfo {
	if tr.kind == trapStep {
		return kdp.ExcInfo{Exception: kdp.ExcBreakpoint, Code: 1} // EXC_I386_SGL / EXC_ARM_BREAKPOINT
	}
	if s.arch == tracer.ArchARM64 {
		// EXC_ARM_BREAKPOINT with a non-zero subcode: LLDB reports a
		// breakpoint hit at PC.
		return kdp.ExcInfo{Exception: kdp.ExcBreakpoint, Code: 1, Subcode: 1}
	}
	// EXC_I386_BPTFLT with RIP one past the int3: LLDB finds the site at
	// PC-1 and rewinds the PC.
	return kdp.ExcInfo{Exception: kdp.ExcBreakpoint, Code: 3}
}

// notify enters the notifying state with the target halted: with a session
// it sends EXCEPTION until acknowledged; without one it waits for a debugger,
// as XNU does when a trap finds no debugger connected.
func (s *Server) notify(tr trap) {
	if !s.connected {
		s.setState(stateWait)
		s.expected = 0
		return
	}
	n := &kdp.ExceptionNotification{Info: []kdp.ExcInfo{s.excInfo(tr)}}
	n.Seq = s.excSeq
	b, err := n.MarshalBinary()
	if err != nil {
		s.opts.Logf("kdp server: encode EXCEPTION: %v", err)
		return
	}
	s.excPacket = b
	s.excTries = 1
	s.setState(stateNotify)
	s.opts.Logf("kdp server: thread %d trapped (%+v); EXCEPTION seq %d", tr.thread, n.Info[0], n.Seq)
	s.send(b, s.excAddr())
}

func (s *Server) excAddr() net.Addr {
	if s.clientAddr == nil {
		return nil
	}
	return s.portAddr(s.clientAddr, s.excPort)
}

// retransmitException resends the notification, or gives up after
// ExceptionTries sends: the session is dropped and the target resumed, as
// x86_64 XNU does.
func (s *Server) retransmitException() {
	if s.state != stateNotify || s.excPacket == nil {
		return
	}
	if s.excTries >= s.opts.ExceptionTries {
		s.opts.Logf("kdp server: exception ack timeout; debugger disconnected")
		s.endSession()
		s.run()
		return
	}
	s.excTries++
	s.send(s.excPacket, s.excAddr())
}

// sendTermination tells the debugger the target exited (best effort: the
// notification XNU never sends, which LLDB acknowledges like an exception).
func (s *Server) sendTermination(code int) {
	if !s.connected {
		return
	}
	n := &kdp.TerminationNotification{TermCode: kdp.TermExit, ExitCode: uint32(code)}
	n.Seq = s.excSeq
	if b, err := n.MarshalBinary(); err == nil {
		s.send(b, s.excAddr())
	}
	s.connected = false
}
