package doctor

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute/config"
)

// TestRunTenancy: doctor on a Tier-1 inside a project and on a VPC checks
// the project, the router, that its routes can be read and that they get
// out, and tells a role that does not reach the path from refused
// credentials; each failure names its fix.
func TestRunTenancy(t *testing.T) {
	nsx.RouteSDKLogs(zap.NewNop())
	const (
		projectT1 = "/orgs/default/projects/tenant-a/infra/tier-1s/t1-pods"
		vpc       = "/orgs/default/projects/tenant-a/vpcs/vpc-pods"
	)
	sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{projectT1, vpc, "/orgs/default/projects/tenant-b/vpcs/other",
		"/orgs/default/projects/tenant-a/vpcs/island"}, Users: map[string]string{"admin": "admin-Pw-1", "alice": "alice-Pw-1"},
		ProjectUsers: map[string]string{"alice": "/orgs/default/projects/tenant-a"}})
	if err := sim.SetVPCDefaultGateway("/orgs/default/projects/tenant-a/vpcs/island", ""); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddTier1("/orgs/default/projects/tenant-a/infra/tier-1s/quiet"); err != nil { // advertises nothing
		t.Fatal(err)
	}
	opts := func(router, user string) Options {
		cfg, problems := config.Load(config.FromMap(map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": sim.Addr(),
			"NSXT_ROUTER_PATH": router, "CLUSTER_CIDR": "100.96.0.0/11", "NSXT_USERNAME": user, "NSXT_PASSWORD": user + "-Pw-1",
			"NSXT_ROOT_CA_DATA_B64": base64.StdEncoding.EncodeToString(sim.CACertPEM())}))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		return Options{Config: cfg, Kube: kube(), ServiceCIDRs: "198.51.100.0/24", LeaseNamespace: "t1route-system"}
	}
	cases := []struct {
		name, router, user string
		want               []string
		wantFail           bool
	}{
		{"project Tier-1", projectT1, "admin", []string{"PASS project: /orgs/default/projects/tenant-a (tenant-a)", "PASS Tier-1: " + projectT1,
			"PASS route advertisement", "PASS static routes: readable on " + projectT1}, false},
		{"VPC", vpc, "admin", []string{"PASS project: /orgs/default/projects/tenant-a", "PASS VPC: " + vpc,
			"PASS VPC connectivity: default gateway /infra/tier-0s/t0", "PASS static routes: readable on " + vpc}, false},
		{"project user on its project's VPC: the manager's own state is not readable, the rest passes", vpc, "alice",
			[]string{"PASS credentials: accepted", "WARN manager version: not readable with this user's role", "PASS VPC: " + vpc, "PASS static routes"}, false},
		{"project user on /infra", "/infra/tier-1s/t1-routable", "alice", []string{"FAIL Tier-1: this user's role does not reach /infra/tier-1s/t1-routable"}, true},
		{"project user on another project", "/orgs/default/projects/tenant-b/vpcs/other", "alice",
			[]string{"FAIL project: this user's role does not reach /orgs/default/projects/tenant-b"}, true},
		{"no such project", "/orgs/default/projects/nope/vpcs/v", "admin", []string{"FAIL project: /orgs/default/projects/nope does not exist"}, true},
		{"no such VPC", "/orgs/default/projects/tenant-a/vpcs/nope", "admin", []string{"PASS project", "FAIL VPC: /orgs/default/projects/tenant-a/vpcs/nope does not exist"}, true},
		{"no such project Tier-1", "/orgs/default/projects/tenant-a/infra/tier-1s/nope", "admin",
			[]string{"FAIL Tier-1: /orgs/default/projects/tenant-a/infra/tier-1s/nope does not exist"}, true},
		{"VPC without a way out", "/orgs/default/projects/tenant-a/vpcs/island", "admin", []string{"FAIL VPC connectivity: the VPC has no default gateway"}, true},
		{"project Tier-1 not advertising static routes", "/orgs/default/projects/tenant-a/infra/tier-1s/quiet", "admin",
			[]string{"FAIL route advertisement: the Tier-1 advertises [], not TIER1_STATIC_ROUTES"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := Run(context.Background(), opts(tc.router, tc.user))
			out := lines(rs)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			if Failed(rs) != tc.wantFail {
				t.Errorf("failed %v, want %v:\n%s", Failed(rs), tc.wantFail, out)
			}
			for _, r := range rs {
				if r.Level == Fail && r.Fix == "" {
					t.Errorf("FAIL %s has no fix", r.Check)
				}
				if strings.Contains(r.Message+r.Fix, "-Pw-1") {
					t.Fatal("a result shows a password")
				}
			}
		})
	}
}
