package ring

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestNewRejectsBadSize(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 3, 6, 100} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", n)
				}
			}()
			New[int](n)
		}()
	}
}

func TestPushPopFIFO(t *testing.T) {
	r := New[int](4)
	for i := range 4 {
		v := i
		if !r.Push(&v) {
			t.Fatalf("push %d: full", i)
		}
	}
	v := 99
	if r.Push(&v) {
		t.Fatal("push into full ring succeeded")
	}
	if r.Len() != 4 || r.Cap() != 4 {
		t.Fatalf("Len %d Cap %d", r.Len(), r.Cap())
	}
	for i := range 4 {
		var got int
		if !r.Pop(&got) || got != i {
			t.Fatalf("pop %d: got %d", i, got)
		}
	}
	var got int
	if r.Pop(&got) {
		t.Fatal("pop from empty ring succeeded")
	}
}

func TestPopNWraps(t *testing.T) {
	r := New[int](8)
	next, want := 0, 0
	dst := make([]int, 5)
	for round := range 50 {
		for range round%7 + 1 {
			v := next
			if r.Push(&v) {
				next++
			}
		}
		n := r.PopN(dst[:round%5+1])
		for _, v := range dst[:n] {
			if v != want {
				t.Fatalf("round %d: got %d want %d", round, v, want)
			}
			want++
		}
	}
	for n := r.PopN(dst); n > 0; n = r.PopN(dst) {
		for _, v := range dst[:n] {
			if v != want {
				t.Fatalf("drain: got %d want %d", v, want)
			}
			want++
		}
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
}

func TestWaitClosed(t *testing.T) {
	r := New[int](2)
	v := 1
	r.Push(&v)
	r.Close()
	ctx := context.Background()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait with a value: %v", err)
	}
	r.Pop(&v)
	if err := r.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on drained closed ring: %v", err)
	}
}

func TestWaitContext(t *testing.T) {
	r := New[int](2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
	v := 1
	r.Push(&v)
	r.Push(&v)
	if err := r.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRoom: %v", err)
	}
}

type rec struct {
	Seq  uint64
	Pad  [10]uint64
	Tail uint64
}

// TestConcurrentOrder runs a producer and a consumer goroutine over millions
// of values and checks that every value arrives once, in order, intact.
func TestConcurrentOrder(t *testing.T) {
	n := uint64(2_000_000)
	if testing.Short() {
		n = 200_000
	}
	for _, batch := range []int{1, 64} {
		r := New[rec](1024)
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); i < n; i++ {
				v := rec{Seq: i, Tail: ^i}
				for !r.Push(&v) {
					if err := r.WaitRoom(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}
			r.Close()
		}()
		want := uint64(0)
		check := func(v *rec) {
			if v.Seq != want || v.Tail != ^want {
				t.Fatalf("batch %d: got seq %d tail %x, want %d", batch, v.Seq, v.Tail, want)
			}
			want++
		}
		dst := make([]rec, batch)
		for {
			if err := r.Wait(ctx); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Fatal(err)
				}
				break
			}
			if batch == 1 {
				var v rec
				for r.Pop(&v) {
					check(&v)
				}
				continue
			}
			k := r.PopN(dst)
			for i := range dst[:k] {
				check(&dst[i])
			}
		}
		wg.Wait()
		if want != n {
			t.Fatalf("batch %d: received %d of %d", batch, want, n)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	r := New[rec](64)
	var v rec
	dst := make([]rec, 8)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Push(&v)
		r.Push(&v)
		r.Pop(&v)
		r.PopN(dst)
	})
	if allocs != 0 {
		t.Fatalf("Push/Pop/PopN allocate %v per run", allocs)
	}
}

// BenchmarkRing measures values per second through the ring between a
// producer and a consumer goroutine (96-byte values; sieve.Record is 104).
func BenchmarkRing(b *testing.B) {
	type rec96 struct{ a [12]uint64 }
	for _, batch := range []int{1, 64} {
		b.Run(map[int]string{1: "Pop", 64: "PopN64"}[batch], func(b *testing.B) {
			r := New[rec96](4096)
			ctx := context.Background()
			b.ReportAllocs()
			done := make(chan struct{})
			go func() {
				defer close(done)
				dst := make([]rec96, batch)
				var v rec96
				for {
					if r.Wait(ctx) != nil {
						return
					}
					if batch == 1 {
						for r.Pop(&v) {
						}
					} else {
						for r.PopN(dst) > 0 {
						}
					}
				}
			}()
			b.ResetTimer()
			start := time.Now()
			var v rec96
			for i := 0; i < b.N; i++ {
				v.a[0] = uint64(i)
				for !r.Push(&v) {
					_ = r.WaitRoom(ctx)
				}
			}
			r.Close()
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
