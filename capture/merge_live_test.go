package capture

import (
	"errors"
	"io"
	"testing"
	"time"
)

// fakeSource delivers scripted reads: a packet (ts > 0), an idle timeout
// (ts == 0) or the end.
type fakeSource struct {
	reads     []int64
	iface     uint8
	clock     int64
	idleClock func() int64 // clock after an idle read
}

func (f *fakeSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if len(f.reads) == 0 {
		return nil, 0, 0, 0, io.EOF
	}
	ts := f.reads[0]
	f.reads = f.reads[1:]
	if ts == 0 {
		if f.idleClock != nil {
			f.clock = max(f.clock, f.idleClock())
		}
		return nil, 0, 0, 0, ErrNoTraffic
	}
	f.clock = max(f.clock, ts)
	return []byte{byte(ts)}, ts, f.iface, LinkTypeEthernet, nil
}
func (f *fakeSource) Clock() int64 { return f.clock }
func (f *fakeSource) Close() error { return nil }

func drain(t *testing.T, m *Merge) (ts []int64, idles int) {
	t.Helper()
	for range 1000 {
		data, at, _, _, err := m.ReadPacket()
		switch {
		case errors.Is(err, io.EOF):
			return ts, idles
		case isTimeout(err):
			idles++
		case err != nil:
			t.Fatal(err)
		default:
			if data[0] != byte(at) {
				t.Fatalf("data of %d is %d: a head's buffer was overwritten", at, data[0])
			}
			ts = append(ts, at)
		}
	}
	t.Fatal("merge does not end")
	return nil, 0
}

func TestMergeOrder(t *testing.T) {
	a := &fakeSource{reads: []int64{1, 4, 5, 9}}
	b := &fakeSource{reads: []int64{2, 3, 6, 7, 8, 10}, iface: 0}
	got, _ := drain(t, NewMerge(a, b, time.Hour))
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}

// A quiet port holds a packet of the other back only until its clock (now
// minus a margin, after an idle poll) has passed the packet.
func TestMergeQuietPort(t *testing.T) {
	a := &fakeSource{reads: []int64{10, 20, 30}}
	b := &fakeSource{reads: []int64{0, 0, 0, 0, 25}, idleClock: func() int64 { return 21 }}
	m := NewMerge(a, b, time.Hour)
	got, idles := drain(t, m)
	want := []int64{10, 20, 25, 30}
	if len(got) != len(want) || got[2] != 25 || got[3] != 30 || got[0] != 10 {
		t.Fatalf("%v, want %v", got, want)
	}
	if idles == 0 {
		t.Fatal("the merge never reported idle while a port was quiet")
	}
	if m.Clock() < 25 {
		t.Fatalf("clock %d after the last packets", m.Clock())
	}
}

// A port whose clock never advances holds the other back at most Window.
func TestMergeWindow(t *testing.T) {
	a := &fakeSource{reads: []int64{10, 20}}
	b := &fakeSource{reads: []int64{0, 0, 0, 0, 0, 0}}
	m := NewMerge(a, b, 50*time.Millisecond)
	now := time.Unix(0, 0)
	m.now = func() time.Time { return now }
	_, _, _, _, err := m.ReadPacket()
	if !isTimeout(err) {
		t.Fatalf("first read: %v, want idle while the window runs", err)
	}
	now = now.Add(60 * time.Millisecond)
	_, ts, _, _, err := m.ReadPacket()
	if err != nil || ts != 10 {
		t.Fatalf("after the window: ts %d err %v, want 10", ts, err)
	}
}

func TestMergeError(t *testing.T) {
	boom := errors.New("boom")
	m := NewMerge(&fakeSource{reads: []int64{1}}, errSource{boom}, 0)
	if _, _, _, _, err := m.ReadPacket(); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
}

type errSource struct{ err error }

func (e errSource) ReadPacket() ([]byte, int64, uint8, uint16, error) { return nil, 0, 0, 0, e.err }
func (errSource) Clock() int64                                        { return 0 }
func (errSource) Close() error                                        { return nil }

func TestDropMonitor(t *testing.T) {
	m := DropMonitor{Iface: "eth0"}
	steps := []struct {
		st   LiveStats
		kind string
	}{
		{LiveStats{Packets: 100}, ""},
		{LiveStats{Packets: 200, Drops: 10, Freezes: 1}, "capture.drops"},
		{LiveStats{Packets: 300, Drops: 30, Freezes: 2}, ""},
		{LiveStats{Packets: 400, Drops: 30, Freezes: 2}, "capture.drops.stop"},
		{LiveStats{Packets: 500, Drops: 30, Freezes: 2}, ""},
		{LiveStats{Packets: 600, Drops: 31, Freezes: 3}, "capture.drops"},
	}
	for i, s := range steps {
		kind, detail, ok := m.Update(s.st)
		if kind != s.kind || ok != (s.kind != "") {
			t.Fatalf("step %d: %q %q, want %q", i, kind, detail, s.kind)
		}
		if i == 3 && detail != "eth0: no more drops; 30 packets dropped of 300 during the episode" {
			t.Fatalf("stop detail %q", detail)
		}
	}
}
