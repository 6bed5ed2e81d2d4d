package ovs

import (
	"net/netip"
	"testing"
)

func TestGatewayAddrs(t *testing.T) {
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}
	gws := GatewayAddrs(append(cidrs, netip.MustParsePrefix("100.96.9.0/31"), netip.MustParsePrefix("fd00:9::/127")))
	if len(gws) != 2 || gws[0].String() != "100.96.1.1/24" || gws[1].String() != "fd00:1::1/64" {
		t.Fatalf("gateway addresses = %v", gws)
	}
}
