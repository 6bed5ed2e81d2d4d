package hostguard

import (
	"net/netip"
	"testing"
)

func TestRules(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("203.0.113.32/28"), netip.MustParsePrefix("2001:db8:113::/64")}
	allowed := []netip.Prefix{netip.MustParsePrefix("100.96.1.10/32"), netip.MustParsePrefix("100.96.2.8/31"), netip.MustParsePrefix("fd00:100:96:1::a/128")}
	cases := []struct {
		name          string
		nets, allowed []netip.Prefix
		v6            bool
		want          string
	}{
		{"IPv4: replies and exempt pods return, the rest to the network is dropped", nets, allowed, false, "*filter\n:T1ROUTE-GUARD - [0:0]\n" +
			"-A T1ROUTE-GUARD -m conntrack --ctdir REPLY -j RETURN\n" +
			"-A T1ROUTE-GUARD -s 100.96.1.10/32 -d 203.0.113.32/28 -j RETURN\n-A T1ROUTE-GUARD -s 100.96.2.8/31 -d 203.0.113.32/28 -j RETURN\n" +
			"-A T1ROUTE-GUARD -d 203.0.113.32/28 -j DROP\nCOMMIT\n"},
		{"IPv6", nets, allowed, true, "*filter\n:T1ROUTE-GUARD - [0:0]\n" +
			"-A T1ROUTE-GUARD -m conntrack --ctdir REPLY -j RETURN\n" +
			"-A T1ROUTE-GUARD -s fd00:100:96:1::a/128 -d 2001:db8:113::/64 -j RETURN\n-A T1ROUTE-GUARD -d 2001:db8:113::/64 -j DROP\nCOMMIT\n"},
		{"no exempt pod: everything to the network is dropped but replies", nets, nil, false, "*filter\n:T1ROUTE-GUARD - [0:0]\n" +
			"-A T1ROUTE-GUARD -m conntrack --ctdir REPLY -j RETURN\n-A T1ROUTE-GUARD -d 203.0.113.32/28 -j DROP\nCOMMIT\n"},
		{"no guard: an empty chain (what was there is removed)", nil, allowed, false, "*filter\n:T1ROUTE-GUARD - [0:0]\nCOMMIT\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Rules(tc.nets, tc.allowed, tc.v6); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
