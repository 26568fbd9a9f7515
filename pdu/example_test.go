package pdu_test

import (
	"fmt"

	"github.com/tmon-project/tmon/pdu"
)

func Example() {
	// Probe: fill a PDU; AddSighting returns false when it is full.
	b := pdu.NewBuilder(1400)
	for i := range 3 {
		b.AddSighting(7, 3, false, pdu.Sighting{Sig: uint32(0xa0 + i), TS: 1_000_000_000 + int64(i)*1500})
	}
	wire := b.Finish(pdu.Header{ProbeTime: 1_000_010_000})

	// Collector: check everything first, then read records into a reused value.
	f, err := pdu.Parse(wire)
	if err != nil {
		panic(err)
	}
	var r pdu.SightingReader
	var s pdu.Sighting
	r.Reset(f.Body)
	for r.Next(&s) {
		fmt.Printf("flow %d sig %#x at %d\n", s.Flow, s.Sig, s.TS)
	}
	fmt.Println(len(wire), "bytes", r.Err())
	// Output:
	// flow 7 sig 0xa0 at 1000000000
	// flow 7 sig 0xa1 at 1000001000
	// flow 7 sig 0xa2 at 1000003000
	// 59 bytes <nil>
}
