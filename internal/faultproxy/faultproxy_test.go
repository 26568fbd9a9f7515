package faultproxy

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// echo runs a UDP echo server until the test ends.
func echo(t *testing.T) netip.AddrPort {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// roundTrips sends n datagrams through the proxy and counts the echoes.
func roundTrips(t *testing.T, p *Proxy, n int) int {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		c.Write([]byte{byte(i)})
	}
	got := 0
	buf := make([]byte, 16)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			return got
		}
		got++
	}
}

func TestFaults(t *testing.T) {
	p, err := New(netip.MustParseAddrPort("127.0.0.1:0"), echo(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := roundTrips(t, p, 100); got != 100 {
		t.Fatalf("clean: %d of 100 echoes", got)
	}
	p.SetFaults(Faults{Duplicate: 1}, Faults{})
	if got := roundTrips(t, p, 50); got != 100 {
		t.Fatalf("duplicate all: %d echoes, want 100", got)
	}
	p.SetFaults(Faults{Drop: 0.5}, Faults{Drop: 0.5})
	if got := roundTrips(t, p, 400); got < 50 || got > 150 {
		t.Fatalf("50%% loss each way: %d of 400 echoes, want about 100", got)
	}
	p.SetFaults(Faults{}, Faults{})
	p.Partition(300 * time.Millisecond)
	if got := roundTrips(t, p, 20); got != 0 {
		t.Fatalf("partitioned: %d echoes", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := roundTrips(t, p, 20); got != 20 {
		t.Fatalf("after the partition: %d of 20", got)
	}
	st := p.Stats()
	if st[0].Duplicated != 50 || st[0].Partitioned != 20 {
		t.Fatalf("stats %+v", st)
	}
}
