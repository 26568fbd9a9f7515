package pdu

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/tmon-project/tmon/flow"
)

// Flow definition record (docs/pdu.md, "Flow definitions"): id, interface,
// class, field set, address families, then only the values of the granular
// fields in the set, in flow.Field order.

// Address family codes, two bits per address in the families byte.
const (
	famNone = 0 // zero (invalid) netip.Addr
	fam4    = 1
	fam6    = 2
)

// validFields is the set of every field this version knows; others are
// rejected so that a newer probe's key is never silently truncated.
var validFields = func() flow.Set {
	var s flow.Set
	for _, f := range flow.Fields() {
		s = s.With(f)
	}
	return s
}()

// The granular fields, in wire order.
var keyFields = func() []flow.Field {
	var out []flow.Field
	for _, f := range flow.Fields() {
		if flow.Granular(f) {
			out = append(out, f)
		}
	}
	return out
}()

func famOf(a netip.Addr) byte {
	switch {
	case !a.IsValid():
		return famNone
	case a.Is4():
		return fam4
	}
	return fam6
}

func addrLen(fam byte) int {
	switch fam {
	case fam4:
		return 4
	case fam6:
		return 16
	}
	return 0
}

// fieldLen returns the bytes of a numeric granular field's value.
func fieldLen(f flow.Field) int {
	switch f {
	case flow.SrcPort, flow.DstPort, flow.VLAN:
		return 2
	case flow.FlowLabel:
		return 3
	}
	return 1
}

func flowDefLen(d *FlowDef) (int, byte) {
	k := &d.Key
	var fams byte
	n := uvarintLen(uint64(d.ID)) + 1 + uvarintLen(uint64(k.Class)) + uvarintLen(uint64(k.Fields)) + 1
	for _, f := range keyFields {
		if !k.Fields.Has(f) {
			continue
		}
		switch f {
		case flow.Src:
			fams |= famOf(k.Src)
			n += addrLen(famOf(k.Src))
		case flow.Dst:
			fams |= famOf(k.Dst) << 2
			n += addrLen(famOf(k.Dst))
		default:
			n += fieldLen(f)
		}
	}
	return n, fams
}

// AddFlowDef appends a flow definition. Only the granular fields in
// d.Key.Fields are carried (others decode as zero); address zones are
// dropped. It returns false, leaving the PDU unchanged, when the record does
// not fit. It does not allocate.
func (b *Builder) AddFlowDef(d FlowDef) bool {
	n, fams := flowDefLen(&d)
	if b.end+n > b.limit {
		return false
	}
	b.begin(TypeFlowDef)
	buf, k := b.buf, &d.Key
	o := b.end
	o += binary.PutUvarint(buf[o:], uint64(d.ID))
	buf[o] = d.Iface
	o++
	o += binary.PutUvarint(buf[o:], uint64(k.Class))
	o += binary.PutUvarint(buf[o:], uint64(k.Fields))
	buf[o] = fams
	o++
	for _, f := range keyFields {
		if !k.Fields.Has(f) {
			continue
		}
		switch f {
		case flow.Src:
			o += putAddr(buf[o:], k.Src)
		case flow.Dst:
			o += putAddr(buf[o:], k.Dst)
		default:
			o += putField(buf[o:], f, keyValue(k, f))
		}
	}
	b.end = o
	b.n++
	return true
}

func putAddr(b []byte, a netip.Addr) int {
	switch famOf(a) {
	case fam4:
		v := a.As4()
		return copy(b, v[:])
	case fam6:
		v := a.As16()
		return copy(b, v[:])
	}
	return 0
}

func putField(b []byte, f flow.Field, v uint32) int {
	switch fieldLen(f) {
	case 2:
		binary.BigEndian.PutUint16(b, uint16(v))
		return 2
	case 3:
		b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v)
		return 3
	}
	b[0] = byte(v)
	return 1
}

func keyValue(k *flow.Key, f flow.Field) uint32 {
	switch f {
	case flow.IPVersion:
		return uint32(k.IPVersion)
	case flow.Proto:
		return uint32(k.Proto)
	case flow.DSCP:
		return uint32(k.DSCP)
	case flow.FlowLabel:
		return k.FlowLabel
	case flow.SrcPort:
		return uint32(k.SrcPort)
	case flow.DstPort:
		return uint32(k.DstPort)
	case flow.ICMPType:
		return uint32(k.ICMPType)
	case flow.ICMPCode:
		return uint32(k.ICMPCode)
	case flow.VLAN:
		return uint32(k.VLAN)
	}
	return 0
}

func setKeyValue(k *flow.Key, f flow.Field, v uint32) {
	switch f {
	case flow.IPVersion:
		k.IPVersion = uint8(v)
	case flow.Proto:
		k.Proto = uint8(v)
	case flow.DSCP:
		k.DSCP = uint8(v)
	case flow.FlowLabel:
		k.FlowLabel = v
	case flow.SrcPort:
		k.SrcPort = uint16(v)
	case flow.DstPort:
		k.DstPort = uint16(v)
	case flow.ICMPType:
		k.ICMPType = uint8(v)
	case flow.ICMPCode:
		k.ICMPCode = uint8(v)
	case flow.VLAN:
		k.VLAN = uint16(v)
	}
}

// FlowDefReader decodes the body of a flow-definition PDU without
// allocating. Use it like SightingReader.
type FlowDefReader struct {
	body []byte
	off  int
	err  error
}

// Reset starts decoding body.
func (r *FlowDefReader) Reset(body []byte) { *r = FlowDefReader{body: body} }

// Err returns the error that stopped Next, nil at a clean end.
func (r *FlowDefReader) Err() error { return r.err }

func (r *FlowDefReader) fail(what string, off int) bool {
	r.err = fmt.Errorf("pdu: decode flow definitions: %s at body offset %d: %w", what, off, ErrMalformed)
	return false
}

// Next decodes the next definition into d and reports whether there was one.
func (r *FlowDefReader) Next(d *FlowDef) bool {
	if r.err != nil || r.off == len(r.body) {
		return false
	}
	b, o := r.body, r.off
	id, n := binary.Uvarint(b[o:])
	if n <= 0 || id > math.MaxUint32 {
		return r.fail("flow id", o)
	}
	o += n
	if o >= len(b) {
		return r.fail("truncated interface", o)
	}
	iface := b[o]
	o++
	class, n := binary.Uvarint(b[o:])
	if n <= 0 || class > math.MaxUint16 {
		return r.fail("class", o)
	}
	o += n
	fields, n := binary.Uvarint(b[o:])
	if n <= 0 || fields > math.MaxUint32 || flow.Set(fields)&^validFields != 0 {
		return r.fail("field set", o)
	}
	o += n
	if o >= len(b) {
		return r.fail("truncated families", o)
	}
	fams := b[o]
	set := flow.Set(fields)
	srcFam, dstFam := fams&3, fams>>2&3
	if fams&0xf0 != 0 || srcFam > fam6 || dstFam > fam6 ||
		(srcFam != famNone && !set.Has(flow.Src)) || (dstFam != famNone && !set.Has(flow.Dst)) {
		return r.fail("address families", o)
	}
	o++
	k := flow.Key{Class: uint16(class), Fields: set}
	for _, f := range keyFields {
		if !set.Has(f) {
			continue
		}
		switch f {
		case flow.Src, flow.Dst:
			fam := srcFam
			if f == flow.Dst {
				fam = dstFam
			}
			l := addrLen(fam)
			if len(b)-o < l {
				return r.fail("truncated address", o)
			}
			var a netip.Addr
			switch fam {
			case fam4:
				a = netip.AddrFrom4([4]byte(b[o : o+4]))
			case fam6:
				a = netip.AddrFrom16([16]byte(b[o : o+16]))
			}
			if f == flow.Src {
				k.Src = a
			} else {
				k.Dst = a
			}
			o += l
		default:
			l := fieldLen(f)
			if len(b)-o < l {
				return r.fail("truncated "+f.String(), o)
			}
			var v uint32
			for _, c := range b[o : o+l] {
				v = v<<8 | uint32(c)
			}
			if v > f.Max() {
				return r.fail(f.String()+" out of range", o)
			}
			setKeyValue(&k, f, v)
			o += l
		}
	}
	r.off = o
	*d = FlowDef{ID: uint32(id), Iface: iface, Key: k}
	return true
}
