package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// listen opens a UDP socket on 127.0.0.1, closed at the end of the test.
func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) netip.AddrPort {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	a := addrOf(c)
	c.Close()
	return a
}

// collect is a Handler that records everything delivered.
type collect struct {
	mu     sync.Mutex
	bodies map[uint32][]byte // seq → body
	counts map[uint32]int    // seq → deliveries
	byes   int
	wms    []Watermark
}

func newCollect() *collect {
	return &collect{bodies: map[uint32][]byte{}, counts: map[uint32]int{}}
}

func (c *collect) HandlePDU(_ netip.AddrPort, f *pdu.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[f.Header.Seq]++
	c.bodies[f.Header.Seq] = append([]byte(nil), f.Body...)
	if f.Header.Type == pdu.TypeBye {
		c.byes++
	}
	return nil
}

func (c *collect) HandleWatermark(_ uint16, _ uint32, w Watermark) {
	c.mu.Lock()
	c.wms = append(c.wms, w)
	c.mu.Unlock()
}

func (c *collect) delivered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}

// check verifies that every PDU was delivered exactly once, unchanged.
func (c *collect) check(t testing.TB, pdus [][]byte) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range pdus {
		seq := uint32(i + 1)
		if n := c.counts[seq]; n != 1 {
			t.Errorf("seq %d delivered %d times", seq, n)
			continue
		}
		f, _ := pdu.Parse(p)
		if string(c.bodies[seq]) != string(f.Body) {
			t.Errorf("seq %d: body changed", seq)
		}
	}
	for seq, n := range c.counts {
		if n != 1 {
			t.Errorf("seq %d delivered %d times", seq, n)
		}
	}
}

// startReceiver runs a Receiver on a fresh socket until the test ends.
func startReceiver(t testing.TB, h Handler) (*Receiver, netip.AddrPort) {
	t.Helper()
	conn := listen(t)
	r, err := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r, addrOf(conn)
}

// makePDUs builds n finished PDUs of mixed types, with growing probe times.
func makePDUs(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := pdu.NewBuilder(600)
	var out [][]byte
	t := int64(1_700_000_000_000_000_000)
	for i := range n {
		b.Reset()
		switch i % 5 {
		case 0:
			for j := 0; b.AddFlowDef(pdu.FlowDef{ID: uint32(i*100 + j)}) && j < 5; j++ {
			}
		case 4:
			b.AddEvent(pdu.Event{TS: t, Kind: "test", Detail: fmt.Sprint("event ", i)})
		default:
			for b.AddSighting(uint32(rng.IntN(10)), 3, true, pdu.Sighting{Sig: rng.Uint32(), TS: t, Size: 100}) {
				t += rng.Int64N(50_000)
			}
		}
		t += 1000
		out = append(out, append([]byte(nil), b.Finish(pdu.Header{ProbeTime: t})...))
	}
	return out
}

// sendLog records the OnSend events of a sender.
type sendLog struct {
	mu  sync.Mutex
	evs []SendEvent
}

func (l *sendLog) record(e SendEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *sendLog) events(collector int) []SendEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []SendEvent
	for _, e := range l.evs {
		if e.Collector == collector {
			out = append(out, e)
		}
	}
	return out
}

// checkGaps asserts that no two sends to one collector were closer than gap.
func (l *sendLog) checkGaps(t testing.TB, collector int, gap time.Duration) {
	t.Helper()
	evs := l.events(collector)
	for i := 1; i < len(evs); i++ {
		if d := evs[i].At.Sub(evs[i-1].At); d < gap {
			t.Errorf("collector %d: sends %d and %d only %v apart (min gap %v)", collector, i-1, i, d, gap)
		}
	}
}

// proxy is a lossy UDP relay between one probe and one collector: it drops,
// duplicates and reorders datagrams in both directions.
type proxy struct {
	front *net.UDPConn // the probe sends here
	back  *net.UDPConn // connected to the collector
	drop  float64
	dup   float64
	delay float64 // probability of holding a datagram back 1–15 ms
	// cut: drop every datagram from the collector (its acks) while set.
	cut atomic.Bool

	mu     sync.Mutex
	rng    *rand.Rand
	client netip.AddrPort
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, collector netip.AddrPort, drop, dup, delay float64) *proxy {
	front := listen(t)
	back, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(collector))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{front: front, back: back, drop: drop, dup: dup, delay: delay, rng: rand.New(rand.NewPCG(7, 7))}
	p.wg.Add(2)
	go p.pump(front, func(b []byte, from netip.AddrPort) {
		p.mu.Lock()
		p.client = from
		p.mu.Unlock()
		back.Write(b)
	})
	go p.pump(back, func(b []byte, _ netip.AddrPort) {
		if p.cut.Load() {
			return
		}
		p.mu.Lock()
		to := p.client
		p.mu.Unlock()
		front.WriteToUDPAddrPort(b, to)
	})
	t.Cleanup(func() {
		front.Close()
		back.Close()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() netip.AddrPort { return addrOf(p.front) }

func (p *proxy) pump(c *net.UDPConn, forward func([]byte, netip.AddrPort)) {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		b := append([]byte(nil), buf[:n]...)
		p.mu.Lock()
		drop, dup, delay := p.rng.Float64() < p.drop, p.rng.Float64() < p.dup, p.rng.Float64() < p.delay
		hold := time.Duration(1+p.rng.IntN(15)) * time.Millisecond
		p.mu.Unlock()
		if drop {
			continue
		}
		copies := 1
		if dup {
			copies = 2
		}
		for range copies {
			if delay {
				p.wg.Add(1)
				time.AfterFunc(hold, func() { defer p.wg.Done(); forward(b, from) })
			} else {
				forward(b, from)
			}
		}
	}
}

func isClosed(err error) bool { return err != nil && (errors.Is(err, net.ErrClosed)) }
