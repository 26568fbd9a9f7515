package transport

import (
	"net"
	"net/netip"
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
