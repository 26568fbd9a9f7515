package reports

import (
	"fmt"
	"io"

	"github.com/tmon-project/tmon/internal/gen"
)

// TruthCheck compares a spool with the ground truth of tmon-gen: what the
// traffic generator did to each packet it sent at hop A.
type TruthCheck struct {
	Delivered     int // truth: packets that reached B, among those tmon measured or called lost
	Exact         int // of those, measured with the delay of the truth, to the ns
	Wrong         int // measured with another delay
	CalledLost    int // delivered, but reported lost
	Lost          int // truth: packets lost, among those tmon measured or called lost
	LostFound     int // of those, reported lost
	LostMeasured  int // lost, yet a delay was reported (impossible: a wrong match)
	NotConsidered int // truth rows tmon neither measured nor called lost (not in a one-way class)
}

// CompareTruth matches each truth row to the spool by its time at hop A.
// Fragments are compared as the datagrams tmon reassembles
// (gen.Datagrams).
func CompareTruth(s *Summary, rows []gen.TruthRow) TruthCheck {
	var c TruthCheck
	for _, r := range gen.Datagrams(rows) {
		d, measured := s.Packets[r.TA]
		lost := s.Lost[r.TA]
		switch {
		case !measured && !lost:
			c.NotConsidered++
		case r.Lost:
			c.Lost++
			if lost {
				c.LostFound++
			}
			if measured {
				c.LostMeasured++
			}
		default:
			c.Delivered++
			switch {
			case measured && d == r.Delay:
				c.Exact++
			case measured:
				c.Wrong++
			default:
				c.CalledLost++
			}
		}
	}
	return c
}

// OK reports whether the spool agrees with the truth exactly.
func (c TruthCheck) OK() bool {
	return c.Exact == c.Delivered && c.LostFound == c.Lost && c.LostMeasured == 0 && c.Wrong == 0 && c.CalledLost == 0
}

// WriteText prints the comparison.
func (c TruthCheck) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nground truth (the generator's record of every packet):\n")
	fmt.Fprintf(w, "  delivered packets measured with the exact delay (ns): %d of %d\n", c.Exact, c.Delivered)
	if c.Wrong+c.CalledLost > 0 {
		fmt.Fprintf(w, "  WRONG: %d measured with another delay, %d reported lost\n", c.Wrong, c.CalledLost)
	}
	fmt.Fprintf(w, "  lost packets reported lost: %d of %d\n", c.LostFound, c.Lost)
	if c.LostMeasured > 0 {
		fmt.Fprintf(w, "  WRONG: %d lost packets were given a delay\n", c.LostMeasured)
	}
	fmt.Fprintf(w, "  packets outside the one-way classes (not measured): %d\n", c.NotConsidered)
	if c.OK() {
		fmt.Fprintln(w, "  => every figure matches the ground truth")
	} else {
		fmt.Fprintln(w, "  => MISMATCH with the ground truth")
	}
}
