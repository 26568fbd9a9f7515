package spool

import (
	"fmt"

	"github.com/tmon-project/tmon/reconcile"
)

// packetChunk is how many bytes of owd_packet rows packetRows hands over
// at a time: a buffer that stays in cache, where the rows of a whole
// interval (50 000 rows, 5 MB, in tmon owd's benchmark) were a fresh
// allocation to zero and fault in, then read three times (checksum, line
// count, write).
const packetChunk = 64 << 10

// packetRows makes iv's owd_packet rows (setFile.gen); the hop pairs have
// been checked.
func (w *Writer) packetRows(iv *reconcile.Interval, start string) func(put func([]byte) error) error {
	return func(put func([]byte) error) error {
		// The text columns of a row depend on its class and hop pair
		// only: made once for every run of rows of the same (they come
		// sorted by flow, a flow has one class).
		lastClass, lastPair := -1, -1
		var head, hops []byte // "<start>\t<class>\t", "\t<hop_from>\t<hop_to>\t"
		pkts := make([]byte, 0, packetChunk+1024)
		for i := range iv.Packets {
			pk := &iv.Packets[i]
			if pk.Class != lastClass || pk.Pair != lastPair {
				ow, p, err := w.pair(pk.Class, pk.Pair)
				if err != nil {
					return fmt.Errorf("spool: write interval %d: flow %d: %w", iv.Start, pk.Flow, err)
				}
				head = append(appendText(append(append(head[:0], start...), '\t'), w.cfg.Classes[pk.Class].Name), '\t')
				hops = appendText(append(hops[:0], '\t'), ow.Hops[p.From].Name)
				hops = append(appendText(append(hops, '\t'), ow.Hops[p.To].Name), '\t')
				lastClass, lastPair = pk.Class, pk.Pair
			}
			pkts = append(pkts, head...)
			pkts = appendDecUint(pkts, uint64(pk.Flow))
			pkts = appendSig(append(pkts, '\t'), pk.Sig)
			pkts = append(pkts, hops...)
			pkts = appendDecInt(pkts, pk.From)
			pkts = appendDecInt(append(pkts, '\t'), pk.To)
			pkts = appendDecInt(append(pkts, '\t'), pk.To-pk.From)
			pkts = appendDecUint(append(pkts, '\t'), uint64(pk.SpanFrom))
			pkts = appendDecUint(append(pkts, '\t'), uint64(pk.SpanTo))
			pkts = appendDecInt(append(pkts, '\t'), (pk.To-int64(pk.SpanTo))-(pk.From-int64(pk.SpanFrom)))
			pkts = append(pkts, '\n')
			if len(pkts) >= packetChunk {
				if err := put(pkts); err != nil {
					return err
				}
				pkts = pkts[:0]
			}
		}
		if len(pkts) > 0 {
			return put(pkts)
		}
		return nil
	}
}
