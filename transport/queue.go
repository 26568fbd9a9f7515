package transport

// The queues a peer keeps its entries in: the unsent ones in order, the
// sent ones by ack timeout. Split from peer.go by concern.

// fifo is a queue of entries that reuses its array.
type fifo struct {
	buf  []*entry
	head int
}

func (q *fifo) len() int      { return len(q.buf) - q.head }
func (q *fifo) peek() *entry  { return q.buf[q.head] }
func (q *fifo) push(e *entry) { q.buf = append(q.buf, e) }

func (q *fifo) pop() *entry {
	e := q.buf[q.head]
	q.buf[q.head] = nil
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	return e
}

// entryHeap orders pending entries by ack timeout expiry.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.hidx = -1
	*h = old[:len(old)-1]
	return e
}
func (h entryHeap) len() int    { return len(h) }
func (h entryHeap) top() *entry { return h[0] }
