package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{"100.96.1.5/32", "100.96.1.0/24", "100.96.1.5/32"}, []string{"100.96.1.0/24"}},
		{[]string{"203.0.113.7/24", "100.96.0.0/16", "100.96.2.0/24"}, []string{"100.96.0.0/16", "203.0.113.0/24"}},
		{[]string{"2001:db8::1/128", "100.96.1.1/32", "2001:db8::/32"}, []string{"100.96.1.1/32", "2001:db8::/32"}},
		{[]string{"0.0.0.0/0", "198.51.100.0/24", "::/0"}, []string{"0.0.0.0/0", "::/0"}},
		// siblings merge, repeatedly; non-siblings of one size do not
		{[]string{"100.96.1.2/32", "100.96.1.3/32", "100.96.1.0/31", "100.96.1.4/32"}, []string{"100.96.1.0/30", "100.96.1.4/32"}},
		{[]string{"100.96.1.1/32", "100.96.1.2/32"}, []string{"100.96.1.1/32", "100.96.1.2/32"}},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, []string{"0.0.0.0/0"}},
	}
	for _, tc := range cases {
		got := normalize(prefixes(tc.in...))
		if fmt.Sprint(got) != fmt.Sprint(prefixes(tc.want...)) {
			t.Errorf("normalize(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSubtract(t *testing.T) {
	cases := []struct {
		cidr   string
		except []string
		want   []string
	}{
		{"203.0.113.0/24", nil, []string{"203.0.113.0/24"}},
		{"203.0.113.0/24", []string{"203.0.113.128/25"}, []string{"203.0.113.0/25"}},
		{"203.0.113.0/24", []string{"203.0.113.10/32"}, []string{"203.0.113.0/29", "203.0.113.8/31", "203.0.113.11/32",
			"203.0.113.12/30", "203.0.113.16/28", "203.0.113.32/27", "203.0.113.64/26", "203.0.113.128/25"}},
		{"203.0.113.0/24", []string{"203.0.113.0/24"}, nil},
		{"203.0.113.0/24", []string{"198.51.100.0/24", "2001:db8::/32"}, []string{"203.0.113.0/24"}},
		{"2001:db8::/32", []string{"2001:db8:8000::/33"}, []string{"2001:db8::/33"}},
	}
	for _, tc := range cases {
		got := subtract(netip.MustParsePrefix(tc.cidr), prefixes(tc.except...))
		if fmt.Sprint(got) != fmt.Sprint(prefixes(tc.want...)) {
			t.Errorf("subtract(%s, %v) = %v, want %v", tc.cidr, tc.except, got, tc.want)
		}
	}
}

// Random excepts: every address of the block is in the result exactly when
// it is in no except.
func TestSubtractRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cidr := netip.MustParsePrefix("100.96.4.0/24")
	for range 200 {
		var except []netip.Prefix
		for range r.IntN(4) {
			a := netip.AddrFrom4([4]byte{100, 96, 4, byte(r.IntN(256))})
			except = append(except, netip.PrefixFrom(a, 24+r.IntN(9)).Masked())
		}
		got := subtract(cidr, except)
		for i := range 256 {
			a := netip.AddrFrom4([4]byte{100, 96, 4, byte(i)})
			want := !slices.ContainsFunc(except, func(p netip.Prefix) bool { return p.Contains(a) })
			if containsAddr(normalize(got), a) != want {
				t.Fatalf("%s minus %v = %v: %s in it is %v, want %v", cidr, except, got, a, !want, want)
			}
		}
	}
}

func TestContainsAddr(t *testing.T) {
	set := normalize(prefixes("100.96.1.0/24", "203.0.113.10/32", "2001:db8:96::/48"))
	for addr, want := range map[string]bool{
		"100.96.1.0": true, "100.96.1.255": true, "100.96.2.0": false, "203.0.113.10": true, "203.0.113.11": false,
		"2001:db8:96::5": true, "2001:db8:97::": false, "::ffff:100.96.1.7": true, "0.0.0.0": false,
	} {
		if got := containsAddr(set, netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{"100.96.1.7/24": "100.96.1.0/24", "::ffff:100.96.0.0/112": "100.96.0.0/16", "2001:db8::/32": "2001:db8::/32"} {
		got, err := parseCIDR(in)
		if err != nil || got.String() != want {
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseCIDR("100.96.1.0"); err == nil {
		t.Error("an address without a length was accepted as a CIDR")
	}
}
