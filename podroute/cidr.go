package podroute

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrShortClusterCIDR is wrapped by CheckClusterCIDR's error for a prefix
// shorter than /8 (IPv4) or /32 (IPv6): the one rule an operator may lift
// (allowShort), with a warning, for a deliberately wide pod range.
var ErrShortClusterCIDR = errors.New("cluster CIDR shorter than the shortest t1route accepts")

// Shortest cluster CIDRs accepted unless allowShort: a /8 is 16 million IPv4
// addresses, a /32 an RIR's smallest IPv6 allocation to an operator.
const (
	MinClusterCIDRBits4 = 8
	MinClusterCIDRBits6 = 32
)

// specialRange is a range no pod may be given: routing it to nodes would
// hijack traffic that must never be forwarded there.
type specialRange struct {
	prefix netip.Prefix
	why    string
}

// specialRanges are refused as (or inside, or around) a cluster CIDR. From
// the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
// updates): every block whose "Forwardable" is False, plus multicast, the
// deprecated site-local and 6to4 relay blocks, 6to4 and the NAT64
// well-known prefix (forwardable, but each names other hosts' addresses).
// Blocks that are forwardable and meant for private networks stay allowed,
// on purpose: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (private use,
// RFC 1918), 100.64.0.0/10 (shared address space, RFC 6598: this project's
// pods live in it), 198.18.0.0/15 and 2001:2::/48 (benchmarking), and
// fc00::/7 (unique local, RFC 4193). A prefix inside several entries gets
// the most specific one's reason. An entry without a reason is an allowed
// exception inside a refused block.
var specialRanges = []specialRange{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791): only a source address while a host learns its own`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122): packets to it never leave a host"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927): valid on one link only, never routed"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890): not forwardable"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737): not forwardable"},
	{netip.MustParsePrefix("192.88.99.0/24"), "the deprecated 6to4 relay anycast block (RFC 7526)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737): not forwardable"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737): not forwardable"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (RFC 5771): a group address, not a network of hosts"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the limited broadcast address (RFC 919)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved for future use (RFC 1112): not forwardable"},

	{netip.MustParsePrefix("::/128"), "the unspecified address (RFC 4291)"},
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291): packets to it never leave a host"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped IPv6 (RFC 4291): these are IPv4 addresses; give the IPv4 CIDR"},
	{netip.MustParsePrefix("::/8"), "reserved by the IETF (RFC 4291): it holds the unspecified, loopback and IPv4-mapped addresses"},
	{netip.MustParsePrefix("64:ff9b::/96"), "the NAT64 well-known prefix (RFC 6052): its addresses stand for IPv4 hosts"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215): its addresses stand for IPv4 hosts"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666): meant to be dropped"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "the dummy IPv6 prefix (RFC 9780): not forwardable"},
	{netip.MustParsePrefix("2001:2::/48"), ""}, // benchmarking: forwardable, allowed (an exception inside 2001::/23)
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928): not forwardable"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849): not forwardable"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (RFC 3056): its addresses stand for IPv4 hosts"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637): not forwardable"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291): valid on one link only, never routed"},
	{netip.MustParsePrefix("fec0::/10"), "the deprecated site-local block (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (RFC 4291): a group address, not a network of hosts"},
}

// unicast6 are the IPv6 blocks assigned for unicast; the rest of the IPv6
// space is reserved by the IETF (IANA IPv6 Address Space registry).
var unicast6 = []netip.Prefix{netip.MustParsePrefix("2000::/3"), netip.MustParsePrefix("fc00::/7")}

// CheckClusterCIDR reports why p may not be a cluster CIDR (a range the
// controller routes pod CIDRs from), or nil. Pure. The configuration parser
// calls it for each CLUSTER_CIDR entry and reports the error as it is after
// the variable's name (a configuration problem: exit 2).
//
// Refused, each error saying why: an invalid prefix or one with host bits
// set; /0 (a default route: the Tier-1's own), always; IPv4 shorter than /8
// and IPv6 shorter than /32 unless allowShort (the error wraps
// ErrShortClusterCIDR, so a flag may lift it with a warning); IPv4-mapped
// IPv6; any prefix overlapping a special-purpose range of specialRanges
// (loopback, link-local, multicast, unspecified, documentation, reserved, …),
// whether it lies inside the prefix or the prefix inside it; and IPv6
// outside the unicast blocks 2000::/3 and fc00::/7. 100.64.0.0/10 (shared
// address space) and the private-use blocks are allowed.
func CheckClusterCIDR(p netip.Prefix, allowShort bool) error {
	if !p.IsValid() {
		return errors.New("is not a valid CIDR")
	}
	if p != p.Masked() {
		return fmt.Errorf("%s has host bits set; did you mean %s?", p, p.Masked())
	}
	if p.Bits() == 0 {
		return fmt.Errorf("%s is a default route: the controller would route all traffic of the Tier-1 to a node; give the cluster's pod range", p)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%s is IPv4-mapped IPv6 (RFC 4291): these are IPv4 addresses; give the IPv4 CIDR %s", p, unmapPrefix(p))
	}
	// The range p lies in, most specific first (so 64:ff9b::/96 is NAT64,
	// not merely inside ::/8), then a range p would take in.
	var inside *specialRange
	for i, s := range specialRanges {
		if s.prefix.Bits() <= p.Bits() && s.prefix.Contains(p.Addr()) && (inside == nil || s.prefix.Bits() > inside.prefix.Bits()) {
			inside = &specialRanges[i]
		}
	}
	switch {
	case inside != nil && inside.why == "":
		// inside an allowed exception (benchmarking in 2001::/23)
	case inside != nil:
		return fmt.Errorf("%s is inside %s, %s", p, inside.prefix, inside.why)
	default:
		for _, s := range specialRanges {
			if s.why != "" && p.Overlaps(s.prefix) {
				return fmt.Errorf("%s includes %s, %s", p, s.prefix, s.why)
			}
		}
	}
	if p.Addr().Is6() && !p.Overlaps(unicast6[0]) && !p.Overlaps(unicast6[1]) {
		return fmt.Errorf("%s is outside the IPv6 unicast blocks 2000::/3 and fc00::/7 (reserved by the IETF); give a unique local (fd00::/8) or global range", p)
	}
	// Last: the one rule an operator may lift must not hide another.
	minBits := MinClusterCIDRBits4
	if p.Addr().Is6() {
		minBits = MinClusterCIDRBits6
	}
	if p.Bits() < minBits && !allowShort {
		return fmt.Errorf("%s is wider than /%d, covering far more than a cluster's pods; give the cluster's pod range: %w", p, minBits, ErrShortClusterCIDR)
	}
	return nil
}

// unmapPrefix is the IPv4 form of an IPv4-mapped IPv6 prefix.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	bits := max(p.Bits()-96, 0)
	q, _ := p.Addr().Unmap().Prefix(bits)
	return q
}
