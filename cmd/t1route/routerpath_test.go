package main

import (
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/config/configtest"
)

// TestValidateConfigRouterPath: validate-config accepts exactly the three
// shapes of NSXT_ROUTER_PATH and shows which one it is; anything else exits
// 2 with one line naming the variable, what is wrong, and the accepted shapes.
func TestValidateConfigRouterPath(t *testing.T) {
	for path, kind := range map[string]string{
		"/infra/tier-1s/t1-routable":                       "(Tier-1)",
		"/orgs/default/projects/tenant-a/infra/tier-1s/t1": "(project Tier-1)",
		"/orgs/default/projects/tenant-a/vpcs/vpc-pods":    "(VPC)",
	} {
		env := configtest.ValidEnv()
		env["NSXT_ROUTER_PATH"] = path
		out, errOut, err := run(env, "validate-config")
		if err != nil || !strings.Contains(out, "router:         "+path+" "+kind) {
			t.Errorf("%s: %v\n%s%s", path, err, out, errOut)
		}
	}
	bad := []struct{ path, why string }{
		{"t1-routable", "not of an accepted shape"},
		{"infra/tier-1s/t1", "not of an accepted shape"},
		{"/infra/tier-0s/t0", "not of an accepted shape"},
		{"/infra/tier-1s/", "bad Tier-1 id"},
		{"/infra/tier-1s/t1/static-routes/r1", "'/'"},
		{"/orgs/default/projects/tenant-a", "not of an accepted shape"},
		{"/orgs/default/projects/tenant-a/infra", "not of an accepted shape"},
		{"/orgs/default/projects/tenant-a/infra/tier-1s/", "bad Tier-1 id"},
		{"/orgs/default/projects/tenant-a/infra/segments/s1", "not of an accepted shape"},
		{"/orgs/default/projects/tenant-a/vpcs", "not of an accepted shape"},
		{"/orgs/default/projects/tenant-a/vpcs/v1/static-routes", "not of an accepted shape"},
		{"/orgs/default/projects//vpcs/v1", "bad project id"},
		{"/orgs//projects/tenant-a/vpcs/v1", "bad org id"},
		{"/orgs/default/projects/tenant a/vpcs/v1", "bad project id"},
		{"/orgs/default/projects/../vpcs/v1", "bad project id"},
		{"/orgs/default/projects/tenant-a/vpcs/v1?x=1", "bad VPC id"},
		{"/orgs/default/tenant-a/vpcs/v1", "not of an accepted shape"},
	}
	for _, tc := range bad {
		env := configtest.ValidEnv()
		env["NSXT_ROUTER_PATH"] = tc.path
		_, errOut, err := run(env, "validate-config")
		if ee, ok := err.(exitError); !ok || ee.code != 2 {
			t.Errorf("%q: exit %v, want 2", tc.path, err)
			continue
		}
		if !strings.Contains(errOut, "NSXT_ROUTER_PATH") || !strings.Contains(errOut, tc.why) || !strings.Contains(errOut, nsx.RouterShapes) {
			t.Errorf("%q: stderr does not name the variable, %q and the accepted shapes:\n%s", tc.path, tc.why, errOut)
		}
		if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 1 {
			t.Errorf("%q: %d lines on stderr, want a header and one problem:\n%s", tc.path, n+1, errOut)
		}
	}
}
