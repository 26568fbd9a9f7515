package spool

// Buffered returns the flow, event and counters rows held in memory, not yet in a
// spool file (they are written by Cut and Close). The collector's journal
// notes when it is zero: every row of the PDUs handled so far is then on
// disk and need not be written again after a restart.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.flows.n + w.events.n
	for _, ir := range w.dataRows() {
		n += ir.n
	}
	return n
}
