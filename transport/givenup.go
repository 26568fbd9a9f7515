package transport

// Given-up PDUs: what a probe tells the collectors it gave up
// (transport.given_up notices, docs/transport.md).

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tmon-project/tmon/pdu"
)

// spanOf describes a PDU being given up: for sightings, the capture times
// of its earliest and latest sightings (a rare path: the body is decoded).
func spanOf(e *entry) givenUp {
	g := givenUp{seq: e.Seq, typ: e.Type}
	if e.Type != pdu.TypeSightings {
		return g
	}
	f, err := pdu.Parse(e.pk.buf)
	if err != nil {
		return g
	}
	var r pdu.SightingReader
	var sg pdu.Sighting
	r.Reset(f.Body)
	for r.Next(&sg) {
		if g.sightings == 0 || sg.TS < g.from {
			g.from = sg.TS
		}
		if g.sightings == 0 || sg.TS > g.to {
			g.to = sg.TS
		}
		g.sightings++
	}
	return g
}

// GivenUp is what a transport.given_up event says: the probe gave up the
// PDUs Seqs (first..last, every seq between them that it had sent to this
// collector and not had acked), holding Sightings sightings captured
// between From and To (ns, inclusive). Other PDU types given up are
// counted in Others.
type GivenUp struct {
	First, Last uint32
	Sightings   int
	Others      int
	From, To    int64
}

// GivenUpDetail renders g as the detail of a transport.given_up event.
func GivenUpDetail(g GivenUp) string {
	return fmt.Sprintf("seqs=%d-%d sightings=%d others=%d from=%d to=%d", g.First, g.Last, g.Sightings, g.Others, g.From, g.To)
}

// ParseGivenUp reads the detail of a transport.given_up event.
func ParseGivenUp(detail string) (GivenUp, error) {
	var g GivenUp
	_, err := fmt.Sscanf(detail, "seqs=%d-%d sightings=%d others=%d from=%d to=%d", &g.First, &g.Last, &g.Sightings, &g.Others, &g.From, &g.To)
	if err != nil {
		return g, fmt.Errorf("transport: given-up notice %q: %w", detail, err)
	}
	return g, nil
}

// givenUpEvents merges PDUs given up at one time into one event per run of
// consecutive seqs.
func givenUpEvents(gs []givenUp, now time.Time) []pdu.Event {
	slices.SortFunc(gs, func(a, b givenUp) int { return cmp.Compare(a.seq, b.seq) })
	var out []pdu.Event
	for i := 0; i < len(gs); {
		g := GivenUp{First: gs[i].seq}
		j := i
		for ; j < len(gs) && (j == i || gs[j].seq == gs[j-1].seq+1); j++ {
			x := gs[j]
			g.Last = x.seq
			if x.typ != pdu.TypeSightings {
				g.Others++
				continue
			}
			if x.sightings > 0 {
				if g.Sightings == 0 || x.from < g.From {
					g.From = x.from
				}
				if g.Sightings == 0 || x.to > g.To {
					g.To = x.to
				}
				g.Sightings += x.sightings
			}
		}
		out = append(out, pdu.Event{TS: now.UnixNano(), Kind: EventGivenUp, Detail: GivenUpDetail(g)})
		i = j
	}
	return out
}
