package analyse

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/sieve"
)

// benchOut encodes sightings into PDUs, as the probe does, and hands them
// to a reconciler, as the collector does, with flow ids made global by key.
type benchOut struct {
	b      *pdu.Builder
	bytes  int64 // observation bytes: finished PDUs
	global map[flow.Key]uint32
	local  []uint32 // this probe's flow id → global id
	hop    uint8
	r      *reconcile.Reconciler
}

func (o *benchOut) FlowDef(d pdu.FlowDef) {
	id, ok := o.global[d.Key]
	if !ok {
		id = uint32(len(o.global))
		o.global[d.Key] = id
		if err := o.r.AddFlow(id, int(d.Key.Class)); err != nil {
			panic(err)
		}
	}
	for int(d.ID) >= len(o.local) {
		o.local = append(o.local, 0)
	}
	o.local[d.ID] = id
}

func (o *benchOut) Sighting(s pdu.Sighting, exp uint8, size bool) {
	if !o.b.AddSighting(s.Flow, exp, size, s) {
		o.bytes += int64(len(o.b.Finish(pdu.Header{})))
		o.b.Reset()
		o.b.AddSighting(s.Flow, exp, size, s)
	}
	o.r.Add(reconcile.Sighting{Flow: o.local[s.Flow], Hop: o.hop, Sig: s.Sig, TS: s.TS})
}

type discardSink struct{}

func (discardSink) WriteInterval(*reconcile.Interval) error { return nil }

// BenchmarkSamplingOverhead is the whole per-packet cost of a one-way
// measurement on the demo traffic (gen defaults, both hops' captures
// interleaved in time): sieve, analyser, PDU encoding and the collector's
// reconciliation including the interval metrics, per captured frame, and
// the observation bytes per observed IP byte, at 1/1, 1/16 and 1/256.
func BenchmarkSamplingOverhead(b *testing.B) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count = 1, 50000
	res, err := gen.Build(gc)
	if err != nil {
		b.Fatal(err)
	}
	type frame struct {
		gen.Frame
		hop uint8
	}
	var frames []frame
	for _, f := range res.A {
		frames = append(frames, frame{f, 0})
	}
	for _, f := range res.B {
		frames = append(frames, frame{f, 1})
	}
	slices.SortStableFunc(frames, func(x, y frame) int { return cmp.Compare(x.TS, y.TS) })
	span := frames[len(frames)-1].TS - frames[0].TS + int64(10*time.Second)
	var ipBytes int64
	for _, f := range frames {
		ipBytes += int64(len(f.Data) - 14)
	}
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("1in%d", n), func(b *testing.B) {
			x := strings.Replace(sampleConf, `sample="1/16"`, fmt.Sprintf(`sample="1/%d" maxTransit="1s" timeout="2s"`, n), 1)
			cfg, err := conf.Parse(strings.NewReader(x), "bench.xml")
			if err != nil {
				b.Fatal(err)
			}
			r, err := reconcile.New(cfg, discardSink{}, reconcile.Options{})
			if err != nil {
				b.Fatal(err)
			}
			global := map[flow.Key]uint32{}
			var svs [2]*sieve.Sieve
			var ans [2]*Analyser
			var outs [2]*benchOut
			for h := range 2 {
				if svs[h], err = sieve.Compile(cfg); err != nil {
					b.Fatal(err)
				}
				outs[h] = &benchOut{b: pdu.NewBuilder(1400), global: global, hop: uint8(h), r: r}
				if ans[h], err = New(cfg, h, outs[h], Config{}); err != nil {
					b.Fatal(err)
				}
			}
			var rec sieve.Record
			var base int64
			i := 0
			step := func() {
				f := &frames[i]
				ts := f.TS + base
				if ok, _ := svs[f.hop].Packet(f.Data, ts, 0, 1, &rec); ok {
					ans[f.hop].Packet(&rec)
				}
				if i%512 == 0 {
					if err := r.Advance(ts - int64(3*time.Second)); err != nil {
						b.Fatal(err)
					}
				}
				if i++; i == len(frames) {
					i, base = 0, base+span
				}
			}
			for range len(frames) {
				step() // steady state: flows known, pools grown
			}
			bytes0 := outs[0].bytes + outs[1].bytes
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				step()
			}
			b.StopTimer()
			obs := outs[0].bytes + outs[1].bytes - bytes0
			observed := float64(ipBytes) * float64(b.N) / float64(len(frames))
			b.ReportMetric(100*float64(obs)/observed, "%obs-bytes")
		})
	}
}

// sampleConf is the sampled one-way class of the selection tests.
const sampleConf = `<tmon interval="1s">
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="pa" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="site">
    <filter><match field="ip.src" value="10.1.0.0/16"/><match field="ip.dst" value="10.2.0.0/16"/></filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" sample="1/16"/>
  </flowClass>
</tmon>`
