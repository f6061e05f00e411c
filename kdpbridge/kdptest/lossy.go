package kdptest

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/machtrace/machtrace/kdpbridge/kdp"
)

// LossyOptions sets how a LossyProxy damages traffic. Probabilities apply to
// every datagram, in both directions, independently.
type LossyOptions struct {
	Drop      float64       // probability a datagram is lost
	Duplicate float64       // probability a forwarded datagram is sent twice
	Reorder   float64       // probability a forwarded datagram is held back
	MaxDelay  time.Duration // longest hold-back of a reordered datagram; 20ms if 0
	Seed      uint64        // random seed; 0 picks one (logged, to replay a failure)
	// Lifetime bounds the proxy: it closes itself after this long (2 minutes
	// if 0), so a hung test cannot keep it alive.
	Lifetime time.Duration
}

// DefaultLossy is the damage the lossy-link tests use: 20% dropped, 10%
// duplicated, 10% reordered.
var DefaultLossy = LossyOptions{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1}

// LossyStats counts what a LossyProxy did.
type LossyStats struct {
	Forwarded, Dropped, Duplicated, Reordered int
}

// LossyProxy is a UDP proxy on 127.0.0.1 between a KDP client and a KDP peer
// that drops, duplicates and reorders datagrams. The client sends to Addr; the
// proxy sends on to the peer from a second socket.
//
// Because a KDP stub replies to the port announced inside CONNECT and
// REATTACH rather than to the datagram's source port, the proxy rewrites
// those port fields to its own peer-side port and forwards the peer's
// datagrams to the client's announced reply port (exception notifications to
// its exception port).
//
// REATTACH requests are dropped like any datagram but never duplicated or
// held back: XNU accepts a REATTACH whatever its sequence number, so a late
// copy would tear down the session that followed it. That is a hazard of the
// protocol itself, which no client can defend against.
type LossyProxy struct {
	tb    testing.TB
	front *net.UDPConn // faces the client
	back  *net.UDPConn // faces the peer
	peer  *net.UDPAddr
	opts  LossyOptions

	mu        sync.Mutex
	rng       *rand.Rand
	client    *net.UDPAddr // where the client sends from
	replyPort uint16       // the client's announced ports
	excPort   uint16
	stats     LossyStats
	closed    bool

	done chan struct{}
	wg   sync.WaitGroup
}

// NewLossyProxy starts a proxy in front of the peer at peer, which must be a
// loopback address. It is closed when the test ends.
func NewLossyProxy(tb testing.TB, peer *net.UDPAddr, opts LossyOptions) *LossyProxy {
	tb.Helper()
	if !peer.IP.IsLoopback() {
		tb.Fatalf("kdptest: lossy proxy peer %v is not a loopback address", peer)
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 20 * time.Millisecond
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 2 * time.Minute
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	tb.Logf("kdptest: lossy proxy drop=%.2f dup=%.2f reorder=%.2f seed=%d", opts.Drop, opts.Duplicate, opts.Reorder, opts.Seed)
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	front, err := net.ListenUDP("udp4", lo)
	if err != nil {
		tb.Fatalf("kdptest: lossy proxy: %v", err)
	}
	back, err := net.ListenUDP("udp4", lo)
	if err != nil {
		front.Close()
		tb.Fatalf("kdptest: lossy proxy: %v", err)
	}
	p := &LossyProxy{
		tb: tb, front: front, back: back, peer: peer, opts: opts,
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		done: make(chan struct{}),
	}
	p.wg.Add(2)
	go p.loop(front, true)
	go p.loop(back, false)
	life := time.AfterFunc(opts.Lifetime, p.Close)
	tb.Cleanup(func() {
		life.Stop()
		p.Close()
	})
	return p
}

// Addr is where the client should send.
func (p *LossyProxy) Addr() *net.UDPAddr { return p.front.LocalAddr().(*net.UDPAddr) }

// Stats returns the counts so far.
func (p *LossyProxy) Stats() LossyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops the proxy; datagrams still held back are discarded.
func (p *LossyProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	p.front.Close()
	p.back.Close()
	p.wg.Wait()
}

func (p *LossyProxy) loop(conn *net.UDPConn, fromClient bool) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
				continue
			}
		}
		d := append([]byte(nil), buf[:n]...)
		if fromClient {
			p.fromClient(d, from)
		} else {
			p.fromPeer(d)
		}
	}
}

func (p *LossyProxy) fromClient(d []byte, from *net.UDPAddr) {
	h, err := kdp.PeekHeader(d)
	spare := false
	p.mu.Lock()
	p.client = from
	if err == nil && !h.Reply {
		backPort := uint16(p.back.LocalAddr().(*net.UDPAddr).Port)
		switch h.Request {
		case kdp.Reattach:
			spare = true
			if len(d) >= 10 {
				p.replyPort = uint16(d[8])<<8 | uint16(d[9])
				d[8], d[9] = byte(backPort>>8), byte(backPort)
			}
		case kdp.Connect:
			if len(d) >= 12 {
				p.replyPort = uint16(d[8])<<8 | uint16(d[9])
				p.excPort = uint16(d[10])<<8 | uint16(d[11])
				d[8], d[9] = byte(backPort>>8), byte(backPort)
				d[10], d[11] = byte(backPort>>8), byte(backPort)
			}
		}
	}
	p.mu.Unlock()
	p.forward(p.back, d, p.peer, spare)
}

func (p *LossyProxy) fromPeer(d []byte) {
	p.mu.Lock()
	if p.client == nil {
		p.mu.Unlock()
		return
	}
	to := &net.UDPAddr{IP: p.client.IP, Port: p.client.Port}
	if h, err := kdp.PeekHeader(d); err == nil {
		port := p.replyPort
		if !h.Reply && (h.Request == kdp.Exception || h.Request == kdp.Termination) {
			port = p.excPort
		}
		if port != 0 {
			to.Port = int(port)
		}
	}
	p.mu.Unlock()
	p.forward(p.front, d, to, false)
}

// forward applies the damage and sends d from conn to to.
func (p *LossyProxy) forward(conn *net.UDPConn, d []byte, to *net.UDPAddr, spare bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.rng.Float64() < p.opts.Drop {
		p.stats.Dropped++
		p.mu.Unlock()
		return
	}
	copies := 1
	if !spare && p.rng.Float64() < p.opts.Duplicate {
		copies = 2
		p.stats.Duplicated++
	}
	var delay time.Duration
	if !spare && p.rng.Float64() < p.opts.Reorder {
		delay = time.Duration(1 + p.rng.Int64N(int64(p.opts.MaxDelay)))
		p.stats.Reordered++
	}
	p.stats.Forwarded++
	p.mu.Unlock()
	for i := range copies {
		if i == 0 && delay > 0 {
			p.wg.Add(1)
			time.AfterFunc(delay, func() {
				defer p.wg.Done()
				select {
				case <-p.done:
				default:
					conn.WriteToUDP(d, to)
				}
			})
			continue
		}
		conn.WriteToUDP(d, to)
	}
}
