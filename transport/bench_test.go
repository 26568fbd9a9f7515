package transport

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// fullSightings returns a finished sightings PDU filled to size.
func fullSightings(size int) ([]byte, int) {
	bu := pdu.NewBuilder(size)
	for i := 0; bu.AddSighting(uint32(i%16), 3, false, pdu.Sighting{Sig: uint32(i * 2654435761), TS: int64(i) * 5000}); i++ {
	}
	return append([]byte(nil), bu.Finish(pdu.Header{})...), bu.Len()
}

// BenchmarkSendAuth measures the probe's per-datagram work on one core:
// encoding a full 1400-byte sightings PDU (the builder), restamping it
// (ids, floor, CRC), signing it (HMAC-SHA256) and writing it to a UDP
// socket.
func BenchmarkSendAuth(b *testing.B) {
	sink := listen(b)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addrOf(sink)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	go func() { // drain, so that the socket buffer never fills
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	signer := pdu.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	bu := pdu.NewBuilder(1400 - pdu.AuthSize)
	scratch := make([]byte, 0, 1400)
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for i := 0; i < b.N; i++ {
		bu.Reset()
		for j := 0; bu.AddSighting(uint32(j%16), 3, false, pdu.Sighting{Sig: uint32(j * 2654435761), TS: int64(j) * 5000}); j++ {
		}
		n = bu.Len()
		p := bu.Finish(pdu.Header{Type: pdu.TypeSightings})
		scratch = append(scratch[:0], p...)
		pdu.Restamp(scratch, 1, 1, uint32(i+1), uint32(i+1))
		scratch, _ = signer.Sign(scratch)
		if _, err := conn.Write(scratch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "PDUs/s")
	b.ReportMetric(float64(n), "sightings/PDU")
}

// BenchmarkReceiveAuth measures the collector's per-PDU work on one core
// with authentication on: checks (CRC, MAC, body), dedupe, watermark, the
// signed ack, and the handler decoding every sighting.
func BenchmarkReceiveAuth(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	r, _ := NewReceiver(listen(b), conf.Transport{}, ReceiverOptions{Logger: quiet, Keys: map[uint16][][]byte{1: {key}}})
	p, n := fullSightings(1400 - pdu.AuthSize)
	signer := pdu.NewSigner(key)
	h := &decodeHandler{}
	buf := make([]byte, 0, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(len(p) + pdu.AuthSize))
	start := time.Now()
	for i := 0; i < b.N; i++ {
		seq := uint32(i + 1)
		buf = append(buf[:0], p...)
		pdu.Restamp(buf, 1, 1, seq, seq)
		buf, _ = signer.Sign(buf) // the probe's work, included: one more HMAC
		if r.process(buf, netip.AddrPort{}, h, nil, false) == nil {
			b.Fatal("not acked")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "PDUs/s")
	b.ReportMetric(float64(n), "sightings/PDU")
}

// countHandler counts the sightings the collector end takes.
type countHandler struct {
	mu        sync.Mutex
	pdus      int
	sightings int
}

func (c *countHandler) HandlePDU(_ netip.AddrPort, f *pdu.Frame) error {
	if f.Header.Type != pdu.TypeSightings {
		return nil // the sender's notices (saturation)
	}
	var r pdu.SightingReader
	var s pdu.Sighting
	r.Reset(f.Body)
	n := 0
	for r.Next(&s) {
		n++
	}
	c.mu.Lock()
	c.pdus++
	c.sightings += n
	c.mu.Unlock()
	return r.Err()
}

func (c *countHandler) count() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pdus, c.sightings
}

// BenchmarkTransportEndToEnd measures what one probe's transport carries to
// one collector on loopback, end to end: full sightings PDUs sent with the
// default transport configuration (conf.DefaultTransport) and
// authentication, received, verified, acked and decoded. The figure is
// sightings/s delivered to the collector's handler.
func BenchmarkTransportEndToEnd(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	conn := listen(b)
	r, err := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet, Keys: map[uint16][][]byte{1: {key}}})
	if err != nil {
		b.Fatal(err)
	}
	h := &countHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, h)
	cfg := conf.DefaultTransport()
	s, err := NewSender(cfg, []netip.AddrPort{addrOf(conn)}, 1, SessionID(time.Now()), SenderOptions{Logger: quiet, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	p, perPDU := fullSightings(BuildSize(cfg, key))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := s.Send(p); err != nil {
			b.Fatal(err)
		}
	}
	for {
		if _, n := h.count(); n >= b.N*perPDU {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	_, sightings := h.count()
	b.ReportMetric(float64(sightings)/el.Seconds(), "sightings/s")
	b.ReportMetric(float64(b.N)/el.Seconds(), "PDUs/s")
	st := s.Stats().Collectors[0]
	b.ReportMetric(float64(st.Retried)/float64(b.N), "retries/PDU")
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	s.Close(cctx)
}
