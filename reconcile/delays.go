package reconcile

import "encoding/binary"

// Keeping an open slot's delays until it closes (split from interval.go).
//
// Reordering, IPDV and the loss patterns need every delay of a flow and
// pair in the interval, in two orders, once the interval closes; the
// quantiles need the minimum delay first. So each delay's (from, to) times
// are kept until then. As 24-byte entries of one slice per slot (stat id
// and two times), they took 1.4 GB at a million delays a second with
// one-minute intervals, and as much again twice over while the slot
// closed (the slice grouped by stat into a second buffer, then a sequence
// of 24-byte entries for the metrics).
//
// Each stat (flow and pair) now has a log of its own, in arrival order: a
// chain of fixed-size chunks, each delay two varints — its hop_from time
// less the previous one's (zigzag: the order at hop_from is nearly, not
// quite, that of arrival) and its delay (zigzag: clocks can make it
// negative). At a thousand packets a second per flow and delays of a few
// ms that is 6 to 7 bytes a delay. The chunks come from a pool of the
// Reconciler that a closing slot gives them back to, allocated in blocks
// that never move: no copy while an interval grows, no allocation in
// steady state. At close one stat at a time is decoded (16 bytes a delay,
// plus 8 for the reordering extents, for the largest stat only).

const (
	chunkSize      = 256 // bytes; waste: under one chunk per stat, and up to maxDelayBytes−1 at each chunk's end
	chunkHeader    = 6   // next chunk (int32, −1: none), end of the data (uint16)
	chunksPerBlock = 256 // chunks allocated together: 64 KiB
	maxDelayBytes  = 2 * binary.MaxVarintLen64
)

// chunkPool is the chunks of every slot's delay logs.
type chunkPool struct {
	blocks [][]byte
	made   int32 // chunks handed out of the blocks so far
	free   int32 // free chunks, chained through their next field; −1: none
}

func newChunkPool() chunkPool { return chunkPool{free: -1} }

// chunk returns chunk i's bytes.
func (p *chunkPool) chunk(i int32) []byte {
	b := p.blocks[uint32(i)/chunksPerBlock]
	o := int(uint32(i)%chunksPerBlock) * chunkSize
	return b[o : o+chunkSize : o+chunkSize]
}

func chunkNext(ch []byte) int32       { return int32(binary.LittleEndian.Uint32(ch)) }
func setChunkNext(ch []byte, n int32) { binary.LittleEndian.PutUint32(ch, uint32(n)) }
func chunkEnd(ch []byte) int          { return int(binary.LittleEndian.Uint16(ch[4:])) }
func setChunkEnd(ch []byte, end int)  { binary.LittleEndian.PutUint16(ch[4:], uint16(end)) }

// get returns a chunk with no successor.
func (p *chunkPool) get() int32 {
	i := p.free
	if i >= 0 {
		p.free = chunkNext(p.chunk(i))
	} else {
		if int(p.made) == len(p.blocks)*chunksPerBlock {
			p.blocks = append(p.blocks, make([]byte, chunksPerBlock*chunkSize))
		}
		i = p.made
		p.made++
	}
	setChunkNext(p.chunk(i), -1)
	return i
}

// delayLog is one stat's delays in the order they were measured. The
// tail chunk's bytes and data end are kept here (the blocks never move),
// written into its header when the next chunk is started.
type delayLog struct {
	cur        []byte // the tail chunk
	end        int    // end of its data
	head, tail int32  // chunks; head −1 while empty
	prev       int64  // hop_from time of the last delay appended
}

func newDelayLog(start int64) delayLog { return delayLog{head: -1, tail: -1, prev: start} }

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// add appends the delay measured from time from to time to.
func (l *delayLog) add(p *chunkPool, from, to int64) {
	if l.end+maxDelayBytes > len(l.cur) {
		l.next(p)
	}
	e := l.end
	e += binary.PutUvarint(l.cur[e:], zigzag(from-l.prev))
	e += binary.PutUvarint(l.cur[e:], zigzag(to-from)) // wraps like the delay itself, and back in decode
	l.end = e
	l.prev = from
}

// next starts a new tail chunk.
func (l *delayLog) next(p *chunkPool) {
	c := p.get()
	if l.tail >= 0 {
		setChunkEnd(l.cur, l.end)
		setChunkNext(l.cur, c)
	} else {
		l.head = c
	}
	l.tail, l.cur, l.end = c, p.chunk(c), chunkHeader
}

// release gives the log's chunks back to the pool and empties it for a
// slot starting at start.
func (l *delayLog) release(p *chunkPool, start int64) {
	if l.head >= 0 {
		setChunkNext(l.cur, p.free)
		p.free = l.head
	}
	*l = newDelayLog(start)
}

// delayEntry is a decoded delay: its times at hop_from and hop_to; t is
// turned into the delay itself (t − from) for the departure order.
type delayEntry struct {
	from, t int64
}

// decode appends the log's delays to out, in the order they were added.
// start is the slot start the log was created with.
func (l *delayLog) decode(p *chunkPool, start int64, out []delayEntry) []delayEntry {
	prev := start
	for c := l.head; c >= 0; {
		ch := p.chunk(c)
		end := l.end
		if c != l.tail {
			end = chunkEnd(ch)
		}
		b := ch[chunkHeader:end]
		for len(b) > 0 {
			u, n := binary.Uvarint(b)
			b = b[n:]
			v, m := binary.Uvarint(b)
			b = b[m:]
			from := prev + unzigzag(u)
			out = append(out, delayEntry{from: from, t: from + unzigzag(v)})
			prev = from
		}
		if c == l.tail {
			break
		}
		c = chunkNext(ch)
	}
	return out
}
