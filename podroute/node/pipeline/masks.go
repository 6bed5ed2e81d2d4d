package pipeline

import (
	"fmt"
	"strings"
)

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

// load writes "set these bits of a 32-bit field to value" in the form
// ovs-vswitchd prints it back: one load per run of contiguous mask bits
// (OpenFlow 1.3 cannot carry a masked set_field of a register, so OVS
// stores it as loads). Written in that form, the flows a sync asks for
// compare equal to the flows installed, and an unchanged flow is left
// alone (diff-flows and replace-flows compare actions as text). field is
// an NXM name such as NXM_NX_REG0 or NXM_NX_CT_MARK.
func load(value, mask uint32, field string) string {
	var parts []string
	for bit := 0; bit < 32; {
		if mask&(1<<bit) == 0 {
			bit++
			continue
		}
		end := bit
		for end+1 < 32 && mask&(1<<(end+1)) != 0 {
			end++
		}
		v := (value >> bit) & (1<<(end-bit+1) - 1)
		if end == bit {
			parts = append(parts, fmt.Sprintf("load:%#x->%s[%d]", v, field, bit))
		} else {
			parts = append(parts, fmt.Sprintf("load:%#x->%s[%d..%d]", v, field, bit, end))
		}
		bit = end + 1
	}
	return strings.Join(parts, ",")
}
