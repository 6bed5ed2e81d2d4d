package rules

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
