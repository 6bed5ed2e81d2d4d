package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// hostPrefix is the single-address prefix of ip.
func hostPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen())
}

// normalize sorts prefixes, drops duplicates and those inside another, and
// merges sibling halves into their parent (pod addresses are allocated
// contiguously per node, so a peer set of many pods often covers whole
// blocks): the result covers exactly the same addresses with the fewest
// disjoint prefixes, so every address matches at most one of them.
func normalize(ps []netip.Prefix) []netip.Prefix {
	out := dedupe(ps)
	for {
		merged := aggregate(out)
		if len(merged) == len(out) {
			return out
		}
		out = merged
	}
}

// aggregate merges adjacent sibling prefixes of a sorted disjoint list once.
func aggregate(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		if i+1 < len(ps) && p.Bits() > 0 && p.Bits() == ps[i+1].Bits() {
			parent := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
			if parent.Addr() == p.Addr() && parent.Contains(ps[i+1].Addr()) {
				out = append(out, parent)
				i++
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// dedupe sorts prefixes and drops duplicates and those inside another.
func dedupe(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	ps = append([]netip.Prefix(nil), ps...)
	for i := range ps {
		ps[i] = ps[i].Masked()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := ps[:1]
	for _, p := range ps[1:] {
		last := out[len(out)-1]
		if last.Addr().BitLen() == p.Addr().BitLen() && last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
			continue // inside (or equal to) the previous kept prefix
		}
		out = append(out, p)
	}
	return out
}

// subtract returns cidr without the except ranges, as disjoint prefixes.
// Excepts outside cidr are ignored (the API requires them inside).
func subtract(cidr netip.Prefix, except []netip.Prefix) []netip.Prefix {
	cidr = cidr.Masked()
	var out []netip.Prefix
	var walk func(p netip.Prefix)
	walk = func(p netip.Prefix) {
		overlaps := false
		for _, e := range except {
			if e.Addr().BitLen() != p.Addr().BitLen() {
				continue
			}
			if e.Bits() <= p.Bits() && e.Contains(p.Addr()) {
				return // p is excepted entirely
			}
			if p.Contains(e.Addr()) {
				overlaps = true
			}
		}
		if !overlaps {
			out = append(out, p)
			return
		}
		lo, hi := halves(p)
		walk(lo)
		walk(hi)
	}
	walk(cidr)
	return out
}

// halves splits a prefix (not a single address) into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	b[(bits-1)/8] |= 0x80 >> uint((bits-1)%8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}

// parseCIDR reads a CIDR as the API writes it (IPv4-mapped IPv6 is
// unmapped so that it matches IPv4 packets).
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", s, err)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// containsAddr reports whether a normalized (sorted, disjoint) prefix list
// holds ip.
func containsAddr(set []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	// The last prefix starting at or before ip is the only candidate.
	i := sort.Search(len(set), func(i int) bool { return set[i].Addr().Compare(ip) > 0 })
	return i > 0 && set[i-1].Contains(ip)
}
