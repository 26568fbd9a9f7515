// Package faultproxy is a UDP proxy that does to datagrams what a bad
// network does: drop, duplicate, reorder, corrupt, delay, and partition for
// a period, each direction on its own. Tests put it between real probe and
// collector processes (probes send to the proxy, the proxy to the
// collector) to check the transport under faults.
package faultproxy

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are what one direction does to datagrams, applied in this order:
// partition, drop, corrupt, duplicate, reorder, delay. Probabilities are in
// [0, 1].
type Faults struct {
	Drop      float64       // probability a datagram is lost
	Duplicate float64       // probability it is sent twice
	Reorder   float64       // probability it is held back and sent after the next one (or after ReorderHold)
	Corrupt   float64       // probability one random byte is flipped
	Delay     time.Duration // added to every datagram
	// Shuffle > 1 holds the datagrams that pass until Shuffle are held
	// (or ShuffleHold, default 20 ms, passed since the first), then sends
	// them in a random order: reordering over a window, as a flood or a
	// replay does.
	Shuffle     int
	ShuffleHold time.Duration
}

// held is one datagram waiting in a shuffle window.
type held struct {
	b    []byte
	send func([]byte)
}

// Stats count datagrams of one direction.
type Stats struct {
	In, Out, Dropped, Duplicated, Reordered, Corrupted, Partitioned uint64
}

// Proxy forwards datagrams between clients and one upstream address. Each
// client address gets its own upstream socket, so that replies find it.
type Proxy struct {
	ln       *net.UDPConn
	upstream netip.AddrPort

	mu        sync.Mutex
	up, down  Faults // up: client → upstream; down: upstream → client
	partUntil time.Time
	partOn    bool
	rng       *rand.Rand
	clients   map[netip.AddrPort]*net.UDPConn
	record    bool      // keep a copy of every client → upstream datagram (an eavesdropper, for replay tests)
	recorded  [][]byte  // what was kept
	held      [2][]byte // one reordered datagram per direction
	heldTo    [2]func([]byte)
	window    [2][]held // shuffle window per direction
	windowGen [2]int    // bumped at each release, so that a stale timer does nothing

	stats [2]struct {
		in, out, dropped, dup, reord, corrupt, part atomic.Uint64
	}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New listens on listen (e.g. 127.0.0.1:0) and forwards to upstream. seed
// makes the fault draws reproducible.
func New(listen, upstream netip.AddrPort, seed uint64) (*Proxy, error) {
	ln, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clients: map[netip.AddrPort]*net.UDPConn{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr returns the address clients send to.
func (p *Proxy) Addr() netip.AddrPort { return p.ln.LocalAddr().(*net.UDPAddr).AddrPort() }

// SetFaults sets the faults of both directions.
func (p *Proxy) SetFaults(up, down Faults) {
	p.mu.Lock()
	p.up, p.down = up, down
	p.mu.Unlock()
}

// Partition drops everything, both ways, for d from now.
func (p *Proxy) Partition(d time.Duration) {
	p.mu.Lock()
	p.partUntil = time.Now().Add(d)
	p.mu.Unlock()
}

// SetPartitioned drops everything, both ways, until called with false.
func (p *Proxy) SetPartitioned(on bool) {
	p.mu.Lock()
	p.partOn = on
	p.mu.Unlock()
}

// Stats returns the counters of the up (0) and down (1) directions.
func (p *Proxy) Stats() [2]Stats {
	var out [2]Stats
	for i := range out {
		s := &p.stats[i]
		out[i] = Stats{In: s.in.Load(), Out: s.out.Load(), Dropped: s.dropped.Load(), Duplicated: s.dup.Load(),
			Reordered: s.reord.Load(), Corrupted: s.corrupt.Load(), Partitioned: s.part.Load()}
	}
	return out
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.mu.Lock()
	for _, c := range p.clients {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := p.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.closed.Load() {
				return
			}
			continue
		}
		up, err := p.client(from)
		if err != nil {
			continue
		}
		p.forward(0, buf[:n], func(b []byte) { up.Write(b) })
	}
}

// client returns the upstream socket of a client, starting its reader.
func (p *Proxy) client(from netip.AddrPort) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[from]; c != nil {
		return c, nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.upstream))
	if err != nil {
		return nil, err
	}
	p.clients[from] = c
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1<<16)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || p.closed.Load() {
					return
				}
				continue // e.g. connection refused while the upstream is down
			}
			p.forward(1, buf[:n], func(b []byte) { p.ln.WriteToUDPAddrPort(b, from) })
		}
	}()
	return c, nil
}

// Record starts keeping a copy of every datagram a client sends, as an
// eavesdropper on the path would (replay tests).
func (p *Proxy) Record() {
	p.mu.Lock()
	p.record = true
	p.mu.Unlock()
}

// Recorded returns the datagrams kept since Record, in arrival order.
func (p *Proxy) Recorded() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recorded)
}

// forward applies the faults of direction dir to b and sends what is left.
func (p *Proxy) forward(dir int, b []byte, send func([]byte)) {
	st := &p.stats[dir]
	st.in.Add(1)
	p.mu.Lock()
	if dir == 0 && p.record {
		p.recorded = append(p.recorded, append([]byte(nil), b...))
	}
	f := p.up
	if dir == 1 {
		f = p.down
	}
	now := time.Now()
	if p.partOn || now.Before(p.partUntil) {
		p.mu.Unlock()
		st.part.Add(1)
		return
	}
	if p.rng.Float64() < f.Drop {
		p.mu.Unlock()
		st.dropped.Add(1)
		return
	}
	b = append([]byte(nil), b...)
	if len(b) > 0 && p.rng.Float64() < f.Corrupt {
		b[p.rng.IntN(len(b))] ^= byte(1 + p.rng.IntN(255))
		st.corrupt.Add(1)
	}
	copies := 1
	if p.rng.Float64() < f.Duplicate {
		copies = 2
		st.dup.Add(1)
	}
	var out [][]byte
	if p.held[dir] == nil && p.rng.Float64() < f.Reorder {
		// Hold it: it leaves after the next datagram of this direction.
		p.held[dir] = b
		p.heldTo[dir] = send
		st.reord.Add(1)
		copies--
	}
	for range copies {
		out = append(out, b)
	}
	var late []byte
	var lateSend func([]byte)
	if len(out) > 0 && p.held[dir] != nil && &p.held[dir][0] != &b[0] {
		late, lateSend = p.held[dir], p.heldTo[dir]
		p.held[dir], p.heldTo[dir] = nil, nil
	}
	p.mu.Unlock()
	emit := func() {
		for _, o := range out {
			send(o)
			st.out.Add(1)
		}
		if late != nil {
			lateSend(late)
			st.out.Add(1)
		}
	}
	if f.Shuffle > 1 {
		hold := f.ShuffleHold
		if hold <= 0 {
			hold = 20 * time.Millisecond
		}
		p.shuffle(dir, f.Shuffle, hold, out, send, late, lateSend)
		return
	}
	if f.Delay > 0 {
		time.AfterFunc(f.Delay, emit)
		return
	}
	emit()
}

// shuffle adds datagrams to direction dir's window and releases the window
// in a random order once it holds n, or hold after it started.
func (p *Proxy) shuffle(dir, n int, hold time.Duration, out [][]byte, send func([]byte), late []byte, lateSend func([]byte)) {
	p.mu.Lock()
	for _, o := range out {
		p.window[dir] = append(p.window[dir], held{o, send})
	}
	if late != nil {
		p.window[dir] = append(p.window[dir], held{late, lateSend})
	}
	switch {
	case len(p.window[dir]) >= n:
		p.releaseLocked(dir)
	case len(p.window[dir]) > 0 && len(p.window[dir]) == len(out)+boolInt(late != nil):
		gen := p.windowGen[dir]
		time.AfterFunc(hold, func() {
			p.mu.Lock()
			if p.windowGen[dir] == gen {
				p.releaseLocked(dir)
			}
			p.mu.Unlock()
		})
	}
	p.mu.Unlock()
}

// releaseLocked sends direction dir's window in a random order; p.mu is held.
func (p *Proxy) releaseLocked(dir int) {
	w := p.window[dir]
	p.rng.Shuffle(len(w), func(i, j int) { w[i], w[j] = w[j], w[i] })
	for _, h := range w {
		h.send(h.b)
		p.stats[dir].out.Add(1)
	}
	p.stats[dir].reord.Add(uint64(len(w)))
	p.window[dir] = w[:0:0]
	p.windowGen[dir]++
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
