package probe

import (
	"errors"
	"io"
	"math"
	"testing"

	"github.com/tmon-project/tmon/capture"
)

// fakeSource delivers packets stamped ts[i], then io.EOF; idle, when set,
// is returned once before the packet of that index (a paced replay's
// ErrIdle) with the clock at idleClock.
type fakeSource struct {
	ts        []int64
	i         int
	idle      int
	idleClock int64
	clock     int64
	buf       [4]byte
}

func (f *fakeSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if f.i == f.idle {
		f.idle = -1
		f.clock = max(f.clock, f.idleClock)
		return nil, 0, 0, 0, capture.ErrIdle
	}
	if f.i == len(f.ts) {
		return nil, 0, 0, 0, io.EOF
	}
	t := f.ts[f.i]
	f.i++
	f.clock = max(f.clock, t)
	f.buf = [4]byte{byte(t), 1, 2, 3}
	return f.buf[:], t, 0, 1, nil
}

func (f *fakeSource) Clock() int64 { return f.clock }
func (f *fakeSource) Close() error { return nil }

// read drains c until io.EOF and returns the stamps and first bytes seen.
func read(t *testing.T, c *cutSource) (ts []int64, first []byte) {
	t.Helper()
	for {
		data, at, _, _, err := c.ReadPacket()
		if errors.Is(err, io.EOF) {
			return ts, first
		}
		if errors.Is(err, capture.ErrIdle) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ts, first = append(ts, at), append(first, data[0])
	}
}

// Every packet is delivered once, in the epoch its stamp belongs to: the
// packet at the cut is kept (a copy) for the next epoch; the clock never
// promises past the cut; the last epoch ends at the real end of input.
func TestCutSource(t *testing.T) {
	src := &fakeSource{ts: []int64{10, 20, 30, 40, 50}, idle: -1}
	c := newCut(src)
	c.arm(30)
	got, first := read(t, c)
	if len(got) != 2 || got[0] != 10 || got[1] != 20 || first[1] != 20 || !c.cut {
		t.Fatalf("first epoch: %v, cut %v", got, c.cut)
	}
	if cl := c.Clock(); cl != 30 {
		t.Errorf("clock at the cut %d, want 30", cl)
	}
	src.buf[0] = 99 // the source's buffer is its own: the kept packet is a copy
	c.reset()
	got, first = read(t, c)
	if len(got) != 3 || got[0] != 30 || first[0] != 30 || got[2] != 50 || c.cut {
		t.Fatalf("second epoch: %v (first bytes %v), cut %v", got, first, c.cut)
	}
}

// An idle source whose clock passed the cut ends the epoch without a
// packet; a probe that caught up leaves out (and counts) the packets
// before the instant.
func TestCutSourceIdle(t *testing.T) {
	src := &fakeSource{ts: []int64{10, 60}, idle: 1, idleClock: 40}
	c := newCut(src)
	c.arm(30)
	if got, _ := read(t, c); len(got) != 1 || !c.cut {
		t.Fatalf("idle past the cut: %v, cut %v", got, c.cut)
	}
	c.reset()
	if got, _ := read(t, c); len(got) != 1 || got[0] != 60 {
		t.Fatalf("after the idle cut: %v", got)
	}

	c = newCut(&fakeSource{ts: []int64{10, 20, 30, 40}, idle: -1})
	c.from = 25
	if got, _ := read(t, c); len(got) != 2 || got[0] != 30 || c.skipped != 2 {
		t.Fatalf("caught up from 25: %v, skipped %d", got, c.skipped)
	}
	if c := newCut(&fakeSource{}); c.at.Load() != math.MaxInt64 {
		t.Error("a new cut is armed")
	}
}
