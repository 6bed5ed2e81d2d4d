package policy

import "fmt"

// PortRange is an inclusive range of destination ports of one protocol;
// 0-65535 is every port (and then no port is matched at all).
type PortRange struct {
	Protocol   Protocol
	Start, End uint16
}

// AllPorts reports whether the range is the whole protocol.
func (r PortRange) AllPorts() bool { return r.Start == 0 && r.End == 65535 }

func (r PortRange) String() string {
	switch {
	case r.AllPorts():
		return r.Protocol.String()
	case r.Start == r.End:
		return fmt.Sprintf("%s/%d", r.Protocol, r.Start)
	}
	return fmt.Sprintf("%s/%d-%d", r.Protocol, r.Start, r.End)
}

// Contains reports whether a packet of this protocol and port is in range.
func (r PortRange) Contains(proto Protocol, port uint16) bool {
	return proto == r.Protocol && port >= r.Start && port <= r.End
}

// valueMask is one masked port match: port & Mask == Value.
type valueMask struct{ Value, Mask uint16 }

// masks covers [start, end] exactly with as few value/mask pairs as
// possible (at most 30 for a 16-bit range), since OpenFlow matches ports
// by mask, not by range.
func masks(start, end uint16) []valueMask {
	var out []valueMask
	s, e := uint32(start), uint32(end)
	for s <= e {
		// The largest aligned block starting at s that stays within e.
		size := uint32(1)
		for s%(size*2) == 0 && s+size*2-1 <= e && size < 1<<16 {
			size *= 2
		}
		out = append(out, valueMask{Value: uint16(s), Mask: uint16(0xffff &^ (size - 1))})
		s += size
	}
	return out
}
