package podroute

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzDesired: odd node data never panics, and every route produced is
// well-formed: a safe ID, a network inside CLUSTER_CIDR, a next hop of its family.
func FuzzDesired(f *testing.F) {
	f.Add("100.96.1.0/24", "198.51.100.1", "fd00:100:96:1::/64", "2001:db8::1")
	f.Add("100.96.1.1/24", "not-an-ip", "", "")
	f.Add("0.0.0.0/0", "0.0.0.0", "::/0", "::")
	f.Add("100.96.1.0/24", "::ffff:198.51.100.1", "fd00:100:96::/48", "198.51.100.1")
	f.Add("100.127.255.0/24", "255.255.255.255", "fd00:100:96:ffff::/64", "fe80::1%eth0")
	f.Fuzz(func(t *testing.T, cidr4, ip4, cidr6, ip6 string) {
		n := Node{Name: "n", PodCIDRs: []string{cidr4, cidr6}, InternalIPs: []string{ip4, ip6}, ExternalIPs: []string{ip6, ip4}}
		routes, problems := Desired(us, dual, []Node{n, n})
		for rid, r := range routes {
			if strings.Trim(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("unsafe route ID %q", rid)
			}
			pfx, err := netip.ParsePrefix(r.Network)
			if err != nil || !within(pfx, dual) {
				t.Fatalf("route for %q outside the cluster CIDRs", r.Network)
			}
			hop, err := netip.ParseAddr(r.NextHops[0].IP)
			if err != nil || hop.Is4() != pfx.Addr().Is4() {
				t.Fatalf("next hop %q for %s", r.NextHops[0].IP, r.Network)
			}
			if !us.Owns(r) {
				t.Fatal("a desired route without ownership tags")
			}
		}
		for _, p := range problems {
			if p.Reason == "" || p.Message == "" {
				t.Fatalf("problem without reason or message: %+v", p)
			}
		}
	})
}
