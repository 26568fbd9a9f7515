package capture

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// The kernel pre-filter of live capture. It runs in the kernel for every
// frame of a capture interface before the frame takes room in the ring, so
// it is kept to what the sieve would discard anyway: frames that are not
// IPv4 or IPv6 (ARP, LLDP, STP...), and the probe's own observation PDUs
// and the collectors' acks, which must never be measured as traffic (they
// would feed back into what they report). It is assembled here without
// libpcap; filter_test.go runs it in golang.org/x/net/bpf's VM.
//
// The frame is Ethernet. Up to two VLAN tags (802.1Q 0x8100, 802.1ad
// 0x88a8, the old QinQ 0x9100) are skipped; a tag the kernel has already
// taken out of the frame (VLAN offload) needs nothing. The accepted length
// is snaplen: the filter's return value is what the kernel copies.
//
// Own PDUs are UDP datagrams to or from a collector's address and port.
// IPv4 fragments after the first, and IPv6 packets with extension headers
// before UDP, are kept: PDUs are sized below the path MTU and carry no
// extension headers, and the sieve's cost for a stray one is small.

// Filter scratch memory slots.
const (
	memL3 = 0 // offset of the IP header
	memL4 = 1 // offset of the IPv4 transport header
)

// PreFilter returns the BPF program that keeps IPv4 and IPv6 frames
// (VLAN-tagged or not) up to snaplen bytes and drops every other frame and
// every UDP datagram to or from one of exclude (the collectors' addresses).
func PreFilter(exclude []netip.AddrPort, snaplen int) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		snaplen = MaxSnaplen
	}
	var v4, v6 []netip.AddrPort
	for _, ap := range exclude {
		a := ap.Addr().Unmap()
		switch {
		case a.Is4():
			v4 = append(v4, netip.AddrPortFrom(a, ap.Port()))
		case a.Is6():
			v6 = append(v6, ap)
		default:
			return nil, fmt.Errorf("capture: pre-filter: exclude %v: not an IP address", ap)
		}
	}
	var a asm
	// A = EtherType, X = offset of the IP header.
	a.add(bpf.LoadAbsolute{Off: 12, Size: 2})
	a.jumpVLAN("tag1")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 14})
	a.jump("l3")
	a.label("tag1")
	a.add(bpf.LoadAbsolute{Off: 16, Size: 2})
	a.jumpVLAN("tag2")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 18})
	a.jump("l3")
	a.label("tag2")
	a.add(bpf.LoadAbsolute{Off: 20, Size: 2})
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 22})
	a.label("l3")
	a.jumpIf(bpf.JumpEqual, 0x0800, "v4", "")
	a.jumpIf(bpf.JumpEqual, 0x86dd, "v6", "drop")

	a.label("v4")
	if len(v4) > 0 {
		a.add(bpf.LoadIndirect{Off: 9, Size: 1})
		a.jumpIf(bpf.JumpEqual, 17, "", "accept")
		a.add(bpf.LoadIndirect{Off: 6, Size: 2})
		a.jumpIf(bpf.JumpBitsSet, 0x1fff, "accept", "") // a later fragment: no UDP header
		a.add(bpf.TXA{})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memL3})
		a.add(bpf.LoadIndirect{Off: 0, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: memL4})
		for i, ap := range v4 {
			ip := ap.Addr().As4()
			addr := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
			src, next := fmt.Sprintf("v4src%d", i), fmt.Sprintf("v4next%d", i)
			// to the collector
			a.add(bpf.LoadScratch{Dst: bpf.RegX, N: memL3})
			a.add(bpf.LoadIndirect{Off: 16, Size: 4})
			a.jumpIf(bpf.JumpEqual, addr, "", src)
			a.add(bpf.LoadScratch{Dst: bpf.RegX, N: memL4})
			a.add(bpf.LoadIndirect{Off: 2, Size: 2})
			a.jumpIf(bpf.JumpEqual, uint32(ap.Port()), "drop", "")
			// from the collector (acks)
			a.label(src)
			a.add(bpf.LoadScratch{Dst: bpf.RegX, N: memL3})
			a.add(bpf.LoadIndirect{Off: 12, Size: 4})
			a.jumpIf(bpf.JumpEqual, addr, "", next)
			a.add(bpf.LoadScratch{Dst: bpf.RegX, N: memL4})
			a.add(bpf.LoadIndirect{Off: 0, Size: 2})
			a.jumpIf(bpf.JumpEqual, uint32(ap.Port()), "drop", "")
			a.label(next)
		}
	}
	a.jump("accept")

	a.label("v6")
	if len(v6) > 0 {
		a.add(bpf.LoadIndirect{Off: 6, Size: 1})
		a.jumpIf(bpf.JumpEqual, 17, "", "accept")
		for i, ap := range v6 {
			b := ap.Addr().As16()
			dst, src, next := fmt.Sprintf("v6dst%d", i), fmt.Sprintf("v6src%d", i), fmt.Sprintf("v6next%d", i)
			a.label(dst)
			a.match16(b, 24, src)
			a.add(bpf.LoadIndirect{Off: 40 + 2, Size: 2})
			a.jumpIf(bpf.JumpEqual, uint32(ap.Port()), "drop", "")
			a.label(src)
			a.match16(b, 8, next)
			a.add(bpf.LoadIndirect{Off: 40, Size: 2})
			a.jumpIf(bpf.JumpEqual, uint32(ap.Port()), "drop", "")
			a.label(next)
		}
	}
	a.label("accept")
	a.add(bpf.RetConstant{Val: uint32(snaplen)})
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	return a.resolve()
}

// AssembleFilter turns a program into the raw form the kernel takes.
func AssembleFilter(prog []bpf.Instruction) ([]bpf.RawInstruction, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("capture: assemble pre-filter: %w", err)
	}
	return raw, nil
}

// asm is a tiny assembler with forward labels: classic BPF jumps are
// relative skips, which are tedious to count by hand and wrong after every
// edit.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fix    []fixup
}

type fixup struct {
	at          int
	true, false string // labels; "" = the next instruction
	always      bool   // unconditional Jump to true
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(l string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[l] = len(a.ins)
}

func (a *asm) jumpIf(c bpf.JumpTest, v uint32, t, f string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), true: t, false: f})
	a.add(bpf.JumpIf{Cond: c, Val: v})
}

func (a *asm) jump(l string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), true: l, always: true})
	a.add(bpf.Jump{})
}

// jumpVLAN jumps to l when A holds a VLAN EtherType.
func (a *asm) jumpVLAN(l string) {
	a.jumpIf(bpf.JumpEqual, 0x8100, l, "")
	a.jumpIf(bpf.JumpEqual, 0x88a8, l, "")
	a.jumpIf(bpf.JumpEqual, 0x9100, l, "")
}

// match16 falls through when the 16 bytes at X+off equal b and jumps to
// miss otherwise.
func (a *asm) match16(b [16]byte, off uint32, miss string) {
	for w := range uint32(4) {
		v := uint32(b[4*w])<<24 | uint32(b[4*w+1])<<16 | uint32(b[4*w+2])<<8 | uint32(b[4*w+3])
		a.add(bpf.LoadIndirect{Off: off + 4*w, Size: 4})
		a.jumpIf(bpf.JumpEqual, v, "", miss)
	}
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	skip := func(at int, l string) (int, error) {
		if l == "" {
			return 0, nil
		}
		to, ok := a.labels[l]
		if !ok {
			return 0, fmt.Errorf("capture: pre-filter: undefined label %q", l)
		}
		if to <= at {
			return 0, fmt.Errorf("capture: pre-filter: backward jump to %q", l)
		}
		return to - at - 1, nil
	}
	for _, f := range a.fix {
		t, err := skip(f.at, f.true)
		if err != nil {
			return nil, err
		}
		if f.always {
			a.ins[f.at] = bpf.Jump{Skip: uint32(t)}
			continue
		}
		e, err := skip(f.at, f.false)
		if err != nil {
			return nil, err
		}
		if t > 255 || e > 255 {
			return nil, fmt.Errorf("capture: pre-filter: too many excluded addresses (a jump of %d instructions)", max(t, e))
		}
		j := a.ins[f.at].(bpf.JumpIf)
		j.SkipTrue, j.SkipFalse = uint8(t), uint8(e)
		a.ins[f.at] = j
	}
	return a.ins, nil
}
