package conf

import "github.com/tmon-project/tmon/flow"

// ProbeByName returns the index in c.Probes of the probe called name.
func (c *Config) ProbeByName(name string) (int, bool) {
	for i := range c.Probes {
		if c.Probes[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// ProbeByID returns the index in c.Probes of the probe with the given wire id.
func (c *Config) ProbeByID(id uint16) (int, bool) {
	for i := range c.Probes {
		if c.Probes[i].ID == id {
			return i, true
		}
	}
	return 0, false
}

// CollectorByName returns the index in c.Collectors of the collector called name.
func (c *Config) CollectorByName(name string) (int, bool) {
	for i := range c.Collectors {
		if c.Collectors[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// ClassByName returns the index in c.Classes of the class called name.
func (c *Config) ClassByName(name string) (int, bool) {
	for i := range c.Classes {
		if c.Classes[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// HopOf returns the hop name of interface iface of probe probe (indexes into
// c.Probes and Probe.Interfaces); "" when it observes no hop or the indexes
// are out of range.
func (c *Config) HopOf(probe, iface int) string {
	if probe < 0 || probe >= len(c.Probes) {
		return ""
	}
	ifs := c.Probes[probe].Interfaces
	if iface < 0 || iface >= len(ifs) {
		return ""
	}
	return ifs[iface].Hop
}

// HopIndex returns the index in cl.OneWay.Hops of the hop that interface
// iface of probe probe observes; false when cl has no one-way measurement or
// the interface is not on its path. An interface observes one hop, and the
// hops of a path are distinct, so the answer is unique.
func (cl *Class) HopIndex(probe, iface int) (int, bool) {
	if cl.OneWay == nil {
		return 0, false
	}
	for i, h := range cl.OneWay.Hops {
		for _, pi := range h.Interfaces {
			if pi.Probe == probe && pi.Interface == iface {
				return i, true
			}
		}
	}
	return 0, false
}

// SignatureMask returns the union of every class's Mask: the sieve hashes
// one signature per packet before it knows which classes want it, so the
// fields any class masks are masked for all.
func (c *Config) SignatureMask() flow.Set {
	var s flow.Set
	for i := range c.Classes {
		s |= c.Classes[i].Mask
	}
	return s
}
