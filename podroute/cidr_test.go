package podroute

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestCheckClusterCIDR: the contract of CheckClusterCIDR, as a table. A
// refused prefix's error says why (want); an accepted one gives nil.
func TestCheckClusterCIDR(t *testing.T) {
	cases := []struct {
		cidr       string
		allowShort bool
		want       string // "" = accepted
	}{
		// What clusters use.
		{"100.96.0.0/11", false, ""},
		{"100.64.0.0/10", false, ""}, // shared address space: this project's pods
		{"10.0.0.0/8", false, ""},
		{"10.244.0.0/16", false, ""},
		{"172.16.0.0/12", false, ""},
		{"192.168.0.0/16", false, ""},
		{"198.18.0.0/15", false, ""}, // benchmarking: forwardable
		{"100.96.1.0/24", false, ""},
		{"fd00:100:96::/48", false, ""},
		{"fc00::/7", false, "wider than /32"},
		{"fc00::/7", true, ""},
		{"2600:1f18::/32", false, ""},
		{"2001:2::/48", false, ""}, // benchmarking, inside 2001::/23
		{"2001:2:0:1::/64", false, ""},

		// Default routes and width.
		{"0.0.0.0/0", false, "default route"},
		{"0.0.0.0/0", true, "default route"},
		{"::/0", true, "default route"},
		{"16.0.0.0/4", false, "wider than /8"},
		{"64.0.0.0/7", false, "wider than /8"},
		{"2400::/6", false, "wider than /32"},
		{"2600::/16", false, "wider than /32"},
		{"96.0.0.0/3", false, "includes 127.0.0.0/8"}, // the reason no flag lifts comes first
		{"2000::/3", true, "includes 2001::/23"},
		{"16.0.0.0/4", true, ""}, // lifted: nothing special inside
		{"2400::/6", true, ""},   // lifted
		{"0.0.0.0/1", true, "includes 0.0.0.0/8"},
		{"128.0.0.0/1", true, "includes 169.254.0.0/16"},
		{"::/1", true, "includes ::/128"},
		{"4000::/3", true, "outside the IPv6 unicast blocks"},

		// Special-purpose ranges, inside and around.
		{"0.0.0.0/8", false, `"this network"`},
		{"127.0.0.0/8", false, "loopback"},
		{"127.1.0.0/16", false, "loopback"},
		{"169.254.0.0/16", false, "link-local"},
		{"169.254.10.0/24", false, "link-local"},
		{"192.0.0.0/24", false, "IETF protocol assignments"},
		{"192.0.2.0/24", false, "documentation"},
		{"192.88.99.0/24", false, "6to4 relay"},
		{"198.51.100.0/24", false, "documentation"},
		{"203.0.113.128/25", false, "documentation"},
		{"192.0.0.0/8", false, "includes 192.0.0.0/24"},
		{"224.0.0.0/4", false, "multicast"},
		{"239.1.0.0/16", false, "multicast"},
		{"240.0.0.0/4", false, "reserved"},
		{"255.255.255.255/32", false, "limited broadcast"},
		{"::/128", false, "unspecified"},
		{"::1/128", false, "loopback"},
		{"::ffff:100.96.0.0/107", false, "IPv4-mapped IPv6"},
		{"::ffff:0:0/96", false, "IPv4-mapped IPv6"},
		{"::/96", false, "reserved by the IETF"},
		{"64:ff9b::/96", false, "NAT64"},
		{"64:ff9b:1::/48", false, "translation"},
		{"100::/64", false, "discard-only"},
		{"2001::/32", false, "IETF protocol assignments"},
		{"2001:db8::/32", false, "documentation"},
		{"2001:db8:100::/48", false, "documentation"},
		{"2002::/16", false, "6to4"},
		{"3fff::/20", false, "documentation"},
		{"fe80::/10", false, "link-local"},
		{"fe80::/64", false, "link-local"},
		{"fec0::/10", false, "site-local"},
		{"ff02::/16", false, "multicast"},
		{"ff00::/8", false, "multicast"},
	}
	for _, c := range cases {
		p := netip.MustParsePrefix(c.cidr)
		err := CheckClusterCIDR(p, c.allowShort)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckClusterCIDR(%s, %v) = %v; want it accepted", c.cidr, c.allowShort, err)
		case c.want != "" && err == nil:
			t.Errorf("CheckClusterCIDR(%s, %v) accepted; want it refused (%s)", c.cidr, c.allowShort, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("CheckClusterCIDR(%s, %v) = %v; want it to say %q", c.cidr, c.allowShort, err, c.want)
		}
	}
	// Only the width rule is the short one; the parser lifts it by flag.
	if err := CheckClusterCIDR(netip.MustParsePrefix("16.0.0.0/4"), false); !errors.Is(err, ErrShortClusterCIDR) {
		t.Errorf("a short CIDR: %v does not wrap ErrShortClusterCIDR", err)
	}
	if err := CheckClusterCIDR(netip.MustParsePrefix("127.0.0.0/8"), false); errors.Is(err, ErrShortClusterCIDR) {
		t.Errorf("loopback: %v wraps ErrShortClusterCIDR", err)
	}
	if err := CheckClusterCIDR(netip.Prefix{}, false); err == nil {
		t.Error("the zero prefix was accepted")
	}
	if err := CheckClusterCIDR(netip.MustParsePrefix("100.96.0.1/11"), false); err == nil || !strings.Contains(err.Error(), "100.96.0.0/11") {
		t.Errorf("host bits: %v", err)
	}
	if err := CheckClusterCIDR(netip.MustParsePrefix("::ffff:100.96.0.0/107"), false); !strings.Contains(err.Error(), "give the IPv4 CIDR 100.96.0.0/11") {
		t.Errorf("IPv4-mapped: %v", err)
	}
	// Every refused range of the table is refused as itself.
	for _, s := range specialRanges {
		if err := CheckClusterCIDR(s.prefix, true); (err == nil) != (s.why == "") {
			t.Errorf("table entry %s (%q): CheckClusterCIDR = %v", s.prefix, s.why, err)
		}
	}
}
