package podroute

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzDesired: odd node data never panics, and every route produced is
// well-formed: a safe ID, a network inside CLUSTER_CIDR, a next hop of its
// family; no two routes overlap (whatever pod CIDRs two nodes claim, and
// whoever holds what), and a route held by a node that still claims it
// stays with that node.
func FuzzDesired(f *testing.F) {
	f.Add("100.96.1.0/24", "198.51.100.1", "fd00:100:96:1::/64", "2001:db8::1", "100.96.1.0/25", int64(0), true)
	f.Add("100.96.1.1/24", "not-an-ip", "", "", "100.96.0.0/11", int64(-60), false)
	f.Add("0.0.0.0/0", "0.0.0.0", "::/0", "::", "fd00:100:96::/48", int64(60), true)
	f.Add("100.96.1.0/24", "::ffff:198.51.100.1", "fd00:100:96::/48", "198.51.100.1", "fd00:100:96:1::/64", int64(1), false)
	f.Add("100.127.255.0/24", "255.255.255.255", "fd00:100:96:ffff::/64", "fe80::1%eth0", "100.127.255.255/32", int64(0), true)
	f.Fuzz(func(t *testing.T, cidr4, ip4, cidr6, ip6, other string, otherAge int64, otherHolds bool) {
		n := Node{Name: "n", PodCIDRs: []string{cidr4, cidr6}, InternalIPs: []string{ip4, ip6}, ExternalIPs: []string{ip6, ip4}}
		o := Node{Name: "o", UID: "uid-o", PodCIDRs: []string{other, cidr4}, InternalIPs: []string{"198.51.100.2", "fd00:198:51::2"},
			Created: time.Unix(0, 0).Add(time.Duration(otherAge) * time.Second)}
		holders := map[string]string{}
		if p, err := netip.ParsePrefix(other); err == nil && otherHolds {
			holders[us.RouteID(p.String())] = "o"
		}
		routes, problems := DesiredHeld(us, dual, []Node{n, n, o}, holders)
		var routed []netip.Prefix
		for rid, r := range routes {
			if strings.Trim(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("unsafe route ID %q", rid)
			}
			pfx, err := netip.ParsePrefix(r.Network)
			if err != nil || !within(pfx, dual) {
				t.Fatalf("route for %q outside the cluster CIDRs", r.Network)
			}
			for _, q := range routed {
				if q.Overlaps(pfx) {
					t.Fatalf("routes for %s and %s overlap", q, pfx)
				}
			}
			routed = append(routed, pfx)
			hop, err := netip.ParseAddr(r.NextHops[0].IP)
			if err != nil || hop.Is4() != pfx.Addr().Is4() {
				t.Fatalf("next hop %q for %s", r.NextHops[0].IP, r.Network)
			}
			if !us.Owns(r) {
				t.Fatal("a desired route without ownership tags")
			}
		}
		for rid, node := range holders {
			if r, ok := routes[rid]; !ok || NodeOf(r) != node {
				for _, p := range problems { // only a reason of its own: outside the cluster, ...
					if p.Node == node && (p.Reason == ReasonDuplicatePodCID || p.Reason == ReasonOverlappingPodCIDR) && p.CIDR == other {
						t.Fatalf("the held route %s was given away: %+v", rid, p)
					}
				}
			}
		}
		for _, p := range problems {
			if p.Reason == "" || p.Message == "" {
				t.Fatalf("problem without reason or message: %+v", p)
			}
		}
	})
}
