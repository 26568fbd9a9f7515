package transport

import "testing"

func TestSessionWindow(t *testing.T) {
	s := newSession(1, 1, 1, 64)
	deliver := func(seq uint32, pt int64) {
		t.Helper()
		if st := s.state(seq); st != seqNew {
			t.Fatalf("seq %d: state %d, want new", seq, st)
		}
		s.mark(seq, pt)
	}
	deliver(1, 10)
	deliver(3, 30) // out of order: the watermark waits for 2
	if s.wm != (Watermark{1, 10}) {
		t.Fatalf("wm = %+v", s.wm)
	}
	if s.state(3) != seqDone || s.state(1) != seqDone {
		t.Fatal("delivered seqs are not duplicates")
	}
	deliver(2, 20)
	if s.wm != (Watermark{3, 30}) {
		t.Fatalf("wm = %+v", s.wm)
	}
	if s.state(4+64) != seqAhead || s.state(4+63) != seqNew { // base is 4
		t.Fatal("window bounds")
	}
	// The ring wraps: seqs far beyond the first lap are new.
	for q := uint32(4); q < 1000; q++ {
		deliver(q, int64(q)*10)
	}
	if s.wm != (Watermark{999, 9990}) {
		t.Fatalf("wm = %+v", s.wm)
	}
}

func TestSessionFloor(t *testing.T) {
	s := newSession(1, 1, 5, 64) // joined late: 1..4 were acked before
	if s.wm.Seq != 4 || s.state(4) != seqDone {
		t.Fatalf("wm = %+v", s.wm)
	}
	s.mark(7, 70)
	s.mark(9, 90)
	// The probe gave up 5 and 6 (and 8): floor 9 settles them, 7 counts.
	if n := s.raiseFloor(9); n != 3 {
		t.Fatalf("skipped %d, want 3", n)
	}
	if s.wm != (Watermark{9, 90}) {
		t.Fatalf("wm = %+v", s.wm)
	}
	if s.raiseFloor(3) != 0 || s.wm.Seq != 9 {
		t.Fatal("a lower floor moved the watermark")
	}
	// A floor far beyond the window.
	s.mark(11, 110)
	if n := s.raiseFloor(1000); n != 1000-10-1 {
		t.Fatalf("skipped %d, want %d", n, 1000-10-1)
	}
	if s.wm != (Watermark{999, 110}) || s.state(1000) != seqNew || s.state(1063) != seqNew || s.state(1064) != seqAhead {
		t.Fatalf("wm = %+v", s.wm)
	}
	for q := uint32(1000); q < 1064; q++ {
		if s.state(q) != seqNew {
			t.Fatalf("seq %d remembered after the floor", q)
		}
	}
}
