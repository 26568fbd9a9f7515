package ring_test

import (
	"context"
	"fmt"

	"github.com/tmon-project/tmon/ring"
)

func Example() {
	r := ring.New[int](8)
	go func() { // the producer
		for i := range 5 {
			for !r.Push(&i) {
				_ = r.WaitRoom(context.Background())
			}
		}
		r.Close()
	}()
	sum := 0
	for r.Wait(context.Background()) == nil { // the consumer
		var v int
		for r.Pop(&v) {
			sum += v
		}
	}
	fmt.Println(sum)
	// Output: 10
}
