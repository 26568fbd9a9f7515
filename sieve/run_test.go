package sieve

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/ring"
)

// sliceSource replays frames from memory.
type sliceSource struct {
	frames [][]byte
	link   uint16
	i, n   int // n: total frames to deliver (cycling through frames)
}

func (s *sliceSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if s.i == s.n {
		return nil, 0, 0, 0, io.EOF
	}
	f := s.frames[s.i%len(s.frames)]
	s.i++
	return f, int64(s.i), 0, s.link, nil
}

var _ Source = (*sliceSource)(nil)

// TestRunLossless: with a tiny ring and a slow consumer, Block loses nothing
// and keeps the order; the ring is closed at the end.
func TestRunLossless(t *testing.T) {
	s, err := Compile(oneWayConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	src := &sliceSource{frames: [][]byte{fixUDP4, fixQinQTCP6, make([]byte, 5)}, link: LinkEthernet, n: n}
	out := ring.New[Record](8)
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = s.Run(context.Background(), src, out, 0, Block)
	}()
	got := 0
	last := int64(0)
	for {
		if err := out.Wait(context.Background()); err != nil {
			if !errors.Is(err, ring.ErrClosed) {
				t.Fatal(err)
			}
			break
		}
		var rec Record
		for out.Pop(&rec) {
			if rec.TS <= last {
				t.Fatalf("record %d after %d", rec.TS, last)
			}
			last = rec.TS
			got++
			if got%1000 == 0 {
				time.Sleep(time.Microsecond)
			}
		}
	}
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	st := s.Stats()
	want := n / 3 * 2
	if n%3 > 0 {
		want += min(n%3, 2)
	}
	if got != want || int(st.Wanted) != want || st.RingDrops != 0 {
		t.Fatalf("got %d records, want %d; stats %+v", got, want, st)
	}
	if st.Packets != n || st.Truncated != uint64(n-want) {
		t.Fatalf("stats %+v", st)
	}
	if s.LiveStats() != st {
		t.Fatalf("published %+v, final %+v", s.LiveStats(), st)
	}
	t.Logf("ring full %d times", st.RingFull)
}

// TestRunDrop: with nobody consuming, Drop counts what it could not push.
func TestRunDrop(t *testing.T) {
	s, _ := Compile(oneWayConfig(0))
	src := &sliceSource{frames: [][]byte{fixUDP4}, link: LinkEthernet, n: 100}
	out := ring.New[Record](16)
	if err := s.Run(context.Background(), src, out, -1, Drop); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if out.Len() != 16 || st.RingDrops != 84 || st.RingFull != 84 || st.Wanted != 100 {
		t.Fatalf("len %d, stats %+v", out.Len(), st)
	}
	if !out.Closed() {
		t.Fatal("ring not closed")
	}
}

// TestRunCancel: a blocked Run returns when its context is cancelled.
func TestRunCancel(t *testing.T) {
	s, _ := Compile(oneWayConfig(0))
	src := &sliceSource{frames: [][]byte{fixUDP4}, link: LinkEthernet, n: 1 << 30}
	out := ring.New[Record](4)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx, src, out, -1, Block); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
}

type errSource struct{ err error }

func (e errSource) ReadPacket() ([]byte, int64, uint8, uint16, error) { return nil, 0, 0, 0, e.err }

func TestRunSourceError(t *testing.T) {
	s, _ := Compile(oneWayConfig(0))
	boom := errors.New("boom")
	if err := s.Run(context.Background(), errSource{boom}, ring.New[Record](2), -1, Block); !errors.Is(err, boom) {
		t.Fatalf("Run: %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	s, err := Compile(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{fixUDP4, fixQinQTCP6, fixICMPUnreach, ip4(17, "10.1.2.3", "10.0.0.2", 100, nil, make([]byte, 20))}
	links := []uint16{LinkEthernet, LinkEthernet, LinkRaw, LinkRaw}
	var rec Record
	allocs := testing.AllocsPerRun(1000, func() {
		for i, f := range frames {
			s.Packet(f, 1, 0, links[i], &rec)
		}
		_, _ = s.Sign(fixICMPUnreach)
	})
	if allocs != 0 {
		t.Fatalf("Packet allocates %v times per run", allocs)
	}
}
