package policy

import (
	"sort"
	"strings"

	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// sortRules puts rules in evaluation order: direction, tier, priority, then
// the policy's name, then rule and part.
func sortRules(rules []rules.Rule) {
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := &rules[i], &rules[j]
		switch {
		case a.Direction != b.Direction:
			return a.Direction < b.Direction
		case a.Tier != b.Tier:
			return a.Tier < b.Tier
		case a.Priority != b.Priority:
			return a.Priority < b.Priority
		case a.Policy.Namespace != b.Policy.Namespace:
			return a.Policy.Namespace < b.Policy.Namespace
		case a.Policy.Name != b.Policy.Name:
			return a.Policy.Name < b.Policy.Name
		case a.Index != b.Index:
			return a.Index < b.Index
		}
		return a.Part < b.Part
	})
}

// normalizePorts sorts and merges ranges; a whole-protocol range absorbs
// the others of its protocol.
func normalizePorts(rs []rules.PortRange) []rules.PortRange {
	if len(rs) == 0 {
		return nil
	}
	rs = append([]rules.PortRange(nil), rs...)
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Protocol != rs[j].Protocol {
			return rs[i].Protocol < rs[j].Protocol
		}
		if rs[i].Start != rs[j].Start {
			return rs[i].Start < rs[j].Start
		}
		return rs[i].End > rs[j].End
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Protocol == last.Protocol && uint32(r.Start) <= uint32(last.End)+1 {
			if r.End > last.End {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func portsKey(rs []rules.PortRange) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String())
		b.WriteByte(',')
	}
	return b.String()
}
