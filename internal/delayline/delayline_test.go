package delayline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// chanDevice is a Device in memory: packets pushed into in are read, the
// written ones are collected with their write time.
type chanDevice struct {
	in     chan []byte
	mu     sync.Mutex
	out    [][]byte
	outT   []int64
	closed chan struct{}
}

func newChanDevice() *chanDevice {
	return &chanDevice{in: make(chan []byte, 1024), closed: make(chan struct{})}
}

func (d *chanDevice) ReadPacket(buf []byte) (int, error) {
	select {
	case p := <-d.in:
		return copy(buf, p), nil
	case <-d.closed:
		return 0, errors.New("closed")
	}
}

func (d *chanDevice) WritePacket(p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out = append(d.out, append([]byte(nil), p...))
	d.outT = append(d.outT, time.Now().UnixNano())
	return nil
}

func (d *chanDevice) written() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.out)
}

// udpPacket builds an IPv4/UDP test packet with sequence number seq.
func udpPacket(seq uint64) []byte {
	p := make([]byte, 20+8+20)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], uint16(seq))
	p[8] = 64
	p[9] = 17
	copy(p[12:], []byte{10, 200, 1, 2, 10, 200, 2, 2})
	binary.BigEndian.PutUint16(p[20:], 40000)
	binary.BigEndian.PutUint16(p[22:], 9000)
	binary.BigEndian.PutUint16(p[24:], 28)
	copy(p[28:], MagicUDP)
	binary.BigEndian.PutUint64(p[32:], seq)
	return p
}

func TestParse(t *testing.T) {
	p := udpPacket(77)
	in, ok := Parse(p)
	if !ok || in.Proto != 17 || in.Dport != 9000 || in.Sport != 40000 || in.Seq != 77 || in.IPID != 77 {
		t.Fatalf("Parse = %+v, %v", in, ok)
	}
	// What a hop and an offloading sender change does not change the key.
	q := slices.Clone(p)
	q[8], q[10], q[11], q[26], q[27] = 63, 0xab, 0xcd, 0x12, 0x34
	if in2, _ := Parse(q); in2.Key != in.Key {
		t.Errorf("key changed by TTL/checksums: %x vs %x", in2.Key, in.Key)
	}
	// The payload does.
	q[40] ^= 1
	if in2, _ := Parse(q); in2.Key == in.Key {
		t.Error("key blind to the payload")
	}
	if _, ok := Parse(p[:19]); ok {
		t.Error("short header parsed")
	}
	if _, ok := Parse([]byte{0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); ok {
		t.Error("IPv6 parsed as IPv4")
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []Config{
		{Delay: time.Millisecond, Jitter: 2 * time.Millisecond},
		{Delay: time.Millisecond, Jitter: -1},
		{Delay: time.Millisecond, Loss: 1.5},
		{Delay: time.Millisecond, Duplicate: -0.1},
	} {
		if _, err := New(c, newChanDevice()); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestLineSchedule runs the line on an in-memory device: every packet
// leaves after its drawn delay (within the jitter bounds, and not early),
// the drop rate is near the configured one, and the record accounts for
// every packet.
func TestLineSchedule(t *testing.T) {
	dev := newChanDevice()
	var rec bytes.Buffer
	cfg := Config{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.1, Seed: 42, Record: &rec}
	l, err := New(cfg, dev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	const n = 2000
	for i := range n {
		dev.in <- udpPacket(uint64(i))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := l.Stats()
		if st.Sent+st.Dropped == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	close(dev.closed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Dropped < n*5/100 || st.Dropped > n*15/100 {
		t.Errorf("dropped %d of %d with loss 0.1", st.Dropped, n)
	}
	if got := len(dev.written()); uint64(got) != st.Sent {
		t.Errorf("device got %d packets, stats say %d sent", got, st.Sent)
	}
	rows, err := ReadRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("record has %d rows, want %d", len(rows), n)
	}
	seen := map[int64]bool{}
	var dropped uint64
	for _, r := range rows {
		seen[r.Seq] = true
		if r.Dropped() {
			dropped++
			continue
		}
		if r.Applied < int64(4*time.Millisecond) || r.Applied > int64(6*time.Millisecond) {
			t.Errorf("seq %d: applied %d outside 5ms ± 1ms", r.Seq, r.Applied)
		}
		if r.Late < 0 || r.Departure-r.Arrival != r.Applied+r.Late {
			t.Errorf("seq %d: arrival %d departure %d applied %d late %d do not add up", r.Seq, r.Arrival, r.Departure, r.Applied, r.Late)
		}
	}
	if len(seen) != n || dropped != st.Dropped {
		t.Errorf("record: %d distinct sequence numbers, %d drops; want %d and %d", len(seen), dropped, n, st.Dropped)
	}
}

// TestLineDuplicateReorder: duplicates come out twice, held packets are
// passed by later ones.
func TestLineDuplicateReorder(t *testing.T) {
	dev := newChanDevice()
	var rec bytes.Buffer
	l, err := New(Config{Delay: time.Millisecond, Duplicate: 0.2, Reorder: 0.2, ReorderExtra: 3 * time.Millisecond, Seed: 7, Record: &rec}, dev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	const n = 500
	for i := range n {
		dev.in <- udpPacket(uint64(i))
		time.Sleep(20 * time.Microsecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := l.Stats(); st.Sent < n+st.Duplicated; st = l.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	close(dev.closed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("stats %+v: want duplicates and reordering", st)
	}
	count := map[uint64]int{}
	var inversions int
	var last uint64
	for i, p := range dev.written() {
		in, _ := Parse(p)
		count[uint64(in.Seq)]++
		if i > 0 && uint64(in.Seq) < last {
			inversions++
		}
		last = uint64(in.Seq)
	}
	var twice uint64
	for _, c := range count {
		if c == 2 {
			twice++
		}
	}
	if len(count) != n || twice != st.Duplicated {
		t.Errorf("%d distinct packets (want %d), %d written twice (want %d)", len(count), n, twice, st.Duplicated)
	}
	if inversions == 0 {
		t.Error("no packet overtaken")
	}
}
