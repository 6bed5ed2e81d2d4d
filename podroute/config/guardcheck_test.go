package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config/configtest"
)

// Management guard settings that cut pods off from everything or from each
// other, or that exempt a whole namespace, are refused naming the variable
// and the consequence; a dual-stack cluster's missing family is a warning.
func TestManagementGuardRefusesWhatIsNotAGuard(t *testing.T) {
	eighths := make([]string, 0, 256)
	for i := range 256 {
		eighths = append(eighths, fmt.Sprintf("%d.0.0.0/8", i))
	}
	cases := []struct {
		name               string
		cluster, mgmt, pod string
		wantVar, want      string // empty: valid
		note               string
	}{
		{"two halves of IPv4", "100.96.0.0/11", "0.0.0.0/1,128.0.0.0/1", "", "NSXT_MANAGEMENT_CIDR", "wider than /8", ""},
		{"a /7", "100.96.0.0/11", "10.0.0.0/7", "", "NSXT_MANAGEMENT_CIDR", "wider than /8", ""},
		{"half of IPv6", "100.96.0.0/11,fd00:100:96::/48", "203.0.113.0/28,::/1", "", "NSXT_MANAGEMENT_CIDR", "wider than /32", ""},
		{"every /8 of IPv4", "fd00:100:96::/48", strings.Join(eighths, ","), "", "NSXT_MANAGEMENT_CIDR", "covers every IPv4 address", ""},
		{"the cluster CIDR itself", "100.96.0.0/11", "100.96.0.0/11", "", "NSXT_MANAGEMENT_CIDR", "overlaps CLUSTER_CIDR 100.96.0.0/11", ""},
		{"inside the cluster CIDR", "100.96.0.0/11", "203.0.113.0/28,100.97.0.0/24", "", "NSXT_MANAGEMENT_CIDR", "overlaps CLUSTER_CIDR", ""},
		{"around the cluster CIDR", "100.96.0.0/11", "100.64.0.0/10", "", "NSXT_MANAGEMENT_CIDR", "overlaps CLUSTER_CIDR", ""},
		{"overlapping the IPv6 cluster CIDR", "100.96.0.0/11,fd00:100:96::/48", "203.0.113.0/28,fd00:100::/32", "", "NSXT_MANAGEMENT_CIDR", "overlaps CLUSTER_CIDR fd00:100:96::/48", ""},
		{"a dual-stack cluster, IPv4 management only", "100.96.0.0/11,fd00:100:96::/48", "203.0.113.0/28", "", "", "", "has no IPv6 CIDR but the cluster is dual-stack"},
		{"a dual-stack cluster, both families", "100.96.0.0/11,fd00:100:96::/48", "203.0.113.0/28,2001:db8:1::/64", "", "", "", ""},
		{"an IPv4 cluster, IPv4 management", "100.96.0.0/11", "203.0.113.0/28", "", "", "", ""},
		{"a selector of absent labels", "100.96.0.0/11", "203.0.113.0/28", "default:!nonexistent", "NSXT_MANAGEMENT_ALLOWED_PODS", "in practice the whole namespace", ""},
		{"a selector of label values not held", "100.96.0.0/11", "203.0.113.0/28", "default:app notin (x)", "NSXT_MANAGEMENT_ALLOWED_PODS", "the whole namespace", ""},
		{"an empty selector", "100.96.0.0/11", "203.0.113.0/28", "default: , ", "NSXT_MANAGEMENT_ALLOWED_PODS", "", ""},
		{"an invalid namespace", "100.96.0.0/11", "203.0.113.0/28", "Bad_NS:app=x", "NSXT_MANAGEMENT_ALLOWED_PODS", "not a valid namespace name", ""},
		{"a namespace too long", "100.96.0.0/11", "203.0.113.0/28", strings.Repeat("n", 64) + ":app=x", "NSXT_MANAGEMENT_ALLOWED_PODS", "not a valid namespace name", ""},
		{"a label key that must exist", "100.96.0.0/11", "203.0.113.0/28", "tools:backup-agent", "", "", ""},
		{"label values in a set", "100.96.0.0/11", "203.0.113.0/28", "tools:app in (a)", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := configtest.ValidEnv()
			env["CLUSTER_CIDR"], env["NSXT_MANAGEMENT_CIDR"] = tc.cluster, tc.mgmt
			if tc.pod != "" {
				env["NSXT_MANAGEMENT_ALLOWED_PODS"] = tc.pod
			}
			cfg, problems := Load(FromMap(env))
			if tc.wantVar == "" {
				if len(problems) > 0 {
					t.Fatalf("refused: %v", problems)
				}
			} else {
				found := false
				for _, p := range problems {
					found = found || p.Var == tc.wantVar && strings.Contains(p.What, tc.want)
				}
				if !found {
					t.Fatalf("want a problem of %s containing %q; got %v", tc.wantVar, tc.want, problems)
				}
			}
			notes := strings.Join(cfg.Notes, "\n")
			if (tc.note == "") != !strings.Contains(notes, "NSXT_MANAGEMENT_CIDR has no") || !strings.Contains(notes, tc.note) {
				t.Fatalf("notes %q, want %q", notes, tc.note)
			}
		})
	}
}

func TestCoversFamily(t *testing.T) {
	for in, want := range map[string]int{
		"0.0.0.0/1,128.0.0.0/1":                    4,
		"0.0.0.0/1,128.0.0.0/2,192.0.0.0/2":        4,
		"0.0.0.0/1,0.0.0.0/2,128.0.0.0/1":          4,
		"0.0.0.0/1,128.0.0.0/2":                    0,
		"::/1,8000::/1,0.0.0.0/1":                  6,
		"203.0.113.0/28,203.0.113.0/24,10.0.0.0/8": 0,
	} {
		var ps []netip.Prefix
		for _, s := range strings.Split(in, ",") {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		if got := coversFamily(ps); got != want {
			t.Errorf("coversFamily(%s) = %d, want %d", in, got, want)
		}
	}
}

// A selector with one positive requirement is enough, whatever else it says.
func TestGuardSelectorNeedsAPositiveRequirement(t *testing.T) {
	for sel, ok := range map[string]bool{"tools:app=backup,!canary": true, "tools:app,tier notin (x)": true, "tools:!app,tier notin (x)": false} {
		g, err := ParseGuardSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		if why := checkGuardSelector(g, sel); (why == "") != ok {
			t.Errorf("%s: %q, want accepted %v", sel, why, ok)
		}
	}
}
