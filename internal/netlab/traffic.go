package netlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Test traffic: UDP datagrams and a TCP stream whose payloads carry a magic,
// a sequence number and the sender's clock, the format the delay line's
// record and the tests parse (internal/delayline: MagicUDP, MagicTCP).
const (
	magicUDP = "OWD1"
	magicTCP = "OWT1"
)

// TrafficOptions shape a Send.
type TrafficOptions struct {
	To      netip.Addr // the receiver (in B)
	UDPPort uint16     // default 9000
	TCPPort uint16     // default 9001; 0 with TCPEvery 0
	// Packets is the number of UDP datagrams; Rate the total packets per
	// second (UDP + TCP writes).
	Packets int
	Rate    float64
	// PayloadSize is the UDP payload length (default 100, minimum 20).
	PayloadSize int
	// TCPEvery sends one small TCP write (TCP_NODELAY, so one segment
	// each while the window allows) after every TCPEvery datagrams; 0
	// sends no TCP.
	TCPEvery int
}

// SendStats is what the sender did.
type SendStats struct {
	UDP, TCP int // datagrams and TCP writes sent
	Elapsed  time.Duration
}

// Receiver is the far end of the test traffic: a UDP socket and a TCP
// listener in B that read and count everything.
type Receiver struct {
	udp     *net.UDPConn
	tcp     *net.TCPListener
	udpN    atomic.Int64
	tcpN    atomic.Int64 // bytes
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	stopped atomic.Bool
}

// Listen starts a receiver in ns on addr's UDP and TCP ports.
func Listen(ns NS, addr netip.Addr, udpPort, tcpPort uint16) (*Receiver, error) {
	r := &Receiver{}
	err := ns.Do(func() error {
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, udpPort)))
		if err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
		r.udp = u
		u.SetReadBuffer(16 << 20)
		if tcpPort != 0 {
			l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, tcpPort)))
			if err != nil {
				u.Close()
				return fmt.Errorf("receiver: %w", err)
			}
			r.tcp = l
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			if _, err := r.udp.Read(buf); err != nil {
				return
			}
			r.udpN.Add(1)
		}
	}()
	if r.tcp != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				c, err := r.tcp.Accept()
				if err != nil {
					return
				}
				r.mu.Lock()
				r.conns = append(r.conns, c)
				r.mu.Unlock()
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					n, _ := io.Copy(io.Discard, c)
					r.tcpN.Add(n)
					c.Close() // our FIN: the sender's graceful close waits for it
				}()
			}
		}()
	}
	return r, nil
}

// Close stops the receiver; it returns the datagrams and TCP bytes read.
func (r *Receiver) Close() (udp, tcpBytes int64) {
	if r.stopped.CompareAndSwap(false, true) {
		r.udp.Close()
		if r.tcp != nil {
			r.tcp.Close()
		}
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	}
	return r.udpN.Load(), r.tcpN.Load()
}

// UDP returns the datagrams received so far.
func (r *Receiver) UDP() int64 { return r.udpN.Load() }

// Send sends the test traffic from ns, paced at o.Rate, and returns when
// the last packet is written (the TCP stream is closed gracefully, its
// data all acknowledged). ctx cancels it.
func Send(ctx context.Context, ns NS, o TrafficOptions) (SendStats, error) {
	var st SendStats
	if o.UDPPort == 0 {
		o.UDPPort = 9000
	}
	if o.TCPPort == 0 {
		o.TCPPort = 9001
	}
	if o.PayloadSize == 0 {
		o.PayloadSize = 100
	}
	if o.PayloadSize < 20 || o.Rate <= 0 || o.Packets <= 0 {
		return st, fmt.Errorf("send: payload %d (≥ 20), rate %v (> 0), packets %d (> 0)", o.PayloadSize, o.Rate, o.Packets)
	}
	var u *net.UDPConn
	var tc *net.TCPConn
	err := ns.Do(func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.To, o.UDPPort)))
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		u = c
		u.SetWriteBuffer(4 << 20)
		if o.TCPEvery > 0 {
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(o.To, o.TCPPort).String())
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			tc = c.(*net.TCPConn)
			tc.SetNoDelay(true)
		}
		return nil
	})
	if err != nil {
		if u != nil {
			u.Close()
		}
		return st, err
	}
	defer u.Close()
	payload := make([]byte, o.PayloadSize)
	copy(payload, magicUDP)
	for i := 12; i < len(payload); i++ {
		payload[i] = byte(i) // filler, so signatures do not all start alike
	}
	var seg [20]byte
	copy(seg[:], magicTCP)
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	n := 0 // packets (both kinds) sent so far: the pacing clock
	pace := func() error {
		due := start.Add(time.Duration(n) * interval)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := time.Until(due)
			if d <= 0 {
				break
			}
			// Sleep when far ahead; a short sleep costs a scheduler
			// tick, so late packets are sent in a small burst instead.
			if d > 200*time.Microsecond {
				time.Sleep(d - 100*time.Microsecond)
			} else {
				time.Sleep(0)
			}
		}
		n++
		return nil
	}
	for i := 0; i < o.Packets; i++ {
		if err := pace(); err != nil {
			return st, err
		}
		binary.BigEndian.PutUint64(payload[4:12], uint64(i))
		binary.BigEndian.PutUint64(payload[12:20], uint64(time.Now().UnixNano()))
		if _, err := u.Write(payload); err != nil {
			return st, fmt.Errorf("send: udp %d: %w", i, err)
		}
		st.UDP++
		if tc != nil && (i+1)%o.TCPEvery == 0 {
			if err := pace(); err != nil {
				return st, err
			}
			binary.BigEndian.PutUint64(seg[4:12], uint64(st.TCP))
			binary.BigEndian.PutUint64(seg[12:20], uint64(time.Now().UnixNano()))
			if _, err := tc.Write(seg[:]); err != nil {
				return st, fmt.Errorf("send: tcp write %d: %w", st.TCP, err)
			}
			st.TCP++
		}
	}
	st.Elapsed = time.Since(start)
	if tc != nil {
		// A graceful close: FIN after the data, then wait for the peer's
		// FIN (it reads to EOF and closes on Receiver.Close, or earlier).
		if err := tc.CloseWrite(); err != nil {
			tc.Close()
			return st, fmt.Errorf("send: tcp close: %w", err)
		}
		tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, tc)
		tc.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return st, fmt.Errorf("send: tcp drain: %w", err)
		}
	}
	return st, nil
}
