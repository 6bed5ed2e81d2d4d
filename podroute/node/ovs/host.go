package ovs

import "net/netip"

// GatewayAddrs is the gateway's address in each podCIDR (IPv4 and IPv6):
// its first address after the network's, with the podCIDR's prefix length,
// so the kernel's connected route for the podCIDR points at the gateway
// port. CIDRs too small for a gateway and pods are skipped.
func GatewayAddrs(podCIDRs []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range podCIDRs {
		p = p.Masked()
		if (p.Addr().Is4() && p.Bits() > 30) || (p.Addr().Is6() && p.Bits() > 126) {
			continue
		}
		out = append(out, netip.PrefixFrom(p.Addr().Next(), p.Bits()))
	}
	return out
}
