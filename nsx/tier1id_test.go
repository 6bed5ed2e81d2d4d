package nsx_test

import (
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

// TestTier1ID: the rule stated at Tier1ID, as a table. Each refused path
// gets an error that says what is wrong.
func TestTier1ID(t *testing.T) {
	long := strings.Repeat("a", nsx.MaxIDLength)
	good := map[string]string{
		"/infra/tier-1s/t1-routable":                          "t1-routable",
		"/infra/tier-1s/cgw":                                  "cgw",
		"/infra/tier-1s/T1_Gateway.prod~2":                    "T1_Gateway.prod~2",
		"/infra/tier-1s/0b8411c0-f6bc-11e9-96cd-1929accbdbaf": "0b8411c0-f6bc-11e9-96cd-1929accbdbaf",
		"/infra/tier-1s/...":                                  "...", // not a dot-segment
		"/infra/tier-1s/" + long:                              long,
	}
	for path, want := range good {
		if id, err := nsx.Tier1ID(path); err != nil || id != want {
			t.Errorf("Tier1ID(%.40q) = %q, %v; want %q", path, id, err, want)
		}
	}
	bad := map[string]string{ // path -> what the error must say
		"":                                            "must be of the form",
		"t1-routable":                                 "must be of the form",
		"/infra/tier-0s/t0":                           "must be of the form",
		"/INFRA/tier-1s/t1":                           "must be of the form",
		"/infra/tier-1s/":                             "empty",
		"/infra/tier-1s/.":                            "path segment",
		"/infra/tier-1s/..":                           "path segment",
		"/infra/tier-1s/a/b":                          "'/' at position 2",
		"/infra/tier-1s/t1?x=1":                       "'?'",
		"/infra/tier-1s/t1#x":                         "'#'",
		"/infra/tier-1s/t%2F1":                        "'%'",
		"/infra/tier-1s/t 1":                          "' '",
		"/infra/tier-1s/t1\n":                         "'\\n'",
		"/infra/tier-1s/t\x001":                       "'\\x00'",
		"/infra/tier-1s/t\x1b[31m1":                   "'\\x1b'",
		"/infra/tier-1s/\"t1\"":                       "'\"'",
		"/infra/tier-1s/t1'":                          "'\\''",
		"/infra/tier-1s/t1\\":                         "'\\\\'",
		"/infra/tier-1s/tïer":                         "non-ASCII",
		"/infra/tier-1s/" + long + "a":                "256 characters long",
		"/infra/tier-1s/" + strings.Repeat("x", 5000): "5000 characters long",
	}
	for path, want := range bad {
		id, err := nsx.Tier1ID(path)
		if err == nil {
			t.Errorf("Tier1ID(%.40q) accepted, id %.40q", path, id)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Tier1ID(%.40q) = %v; want it to say %s", path, err, want)
		}
		if len(err.Error()) > 400 || strings.ContainsAny(err.Error(), "\n\x00\x1b") {
			t.Errorf("Tier1ID(%.40q): error %q is long or not printable", path, err)
		}
	}
}

// TestParseRouterPath: the three accepted shapes parse into their parts and
// print back unchanged; anything else is refused with an error naming the
// accepted shapes and what is wrong.
func TestParseRouterPath(t *testing.T) {
	good := []struct {
		path             string
		kind             nsx.RouterKind
		org, project, id string
	}{
		{"/infra/tier-1s/t1-routable", nsx.InfraTier1, "", "", "t1-routable"},
		{"/orgs/default/projects/tenant-a/infra/tier-1s/t1", nsx.ProjectTier1, "default", "tenant-a", "t1"},
		{"/orgs/default/projects/tenant-a/vpcs/vpc-1", nsx.VPC, "default", "tenant-a", "vpc-1"},
		{"/orgs/org_2/projects/P.x~1/vpcs/0b8411c0-f6bc-11e9-96cd-1929accbdbaf", nsx.VPC, "org_2", "P.x~1", "0b8411c0-f6bc-11e9-96cd-1929accbdbaf"},
	}
	for _, tc := range good {
		p, err := nsx.ParseRouterPath(tc.path)
		if err != nil {
			t.Errorf("ParseRouterPath(%q): %v", tc.path, err)
			continue
		}
		if p.Kind() != tc.kind || p.Org() != tc.org || p.Project() != tc.project || p.ID() != tc.id || p.String() != tc.path || p.IsZero() {
			t.Errorf("ParseRouterPath(%q) = kind %v org %q project %q id %q (%s)", tc.path, p.Kind(), p.Org(), p.Project(), p.ID(), p)
		}
		if want := tc.path + "/static-routes/r1"; p.RoutePath("r1") != want {
			t.Errorf("RoutePath = %q, want %q", p.RoutePath("r1"), want)
		}
	}
	bad := map[string]string{ // path -> what the error must say besides the shapes
		"":                                                          "not of an accepted shape",
		"t1-routable":                                               "not of an accepted shape",
		"/infra/tier-0s/t0":                                         "not of an accepted shape",
		"/infra/tier-1s/":                                           "empty",
		"/infra/tier-1s/a/b":                                        "'/'",
		"/orgs/default/projects/p":                                  "not of an accepted shape",
		"/orgs/default/projects/p/infra":                            "not of an accepted shape",
		"/orgs/default/projects/p/infra/tier-1s":                    "not of an accepted shape",
		"/orgs/default/projects/p/infra/tier-1s/":                   "bad Tier-1 id",
		"/orgs/default/projects/p/infra/tier-0s/t0":                 "not of an accepted shape",
		"/orgs/default/projects/p/infra/tier-1s/t1/extra":           "not of an accepted shape",
		"/orgs/default/projects/p/vpcs/":                            "bad VPC id",
		"/orgs/default/projects/p/vpcs/v/static-routes":             "not of an accepted shape",
		"/orgs/default/projects/p/vpcs/v/":                          "not of an accepted shape",
		"/orgs//projects/p/vpcs/v":                                  "bad org id",
		"/orgs/default/projects//vpcs/v":                            "bad project id",
		"/orgs/default/projects/../vpcs/v":                          "bad project id",
		"/orgs/default/project/p/vpcs/v":                            "not of an accepted shape",
		"/orgs/default/projects/p q/vpcs/v":                         "bad project id",
		"/orgs/default/projects/p/vpcs/v%2F1":                       "bad VPC id",
		"/orgs/default/projects/p/vpcs/v?x=1":                       "bad VPC id",
		"/ORGS/default/projects/p/vpcs/v":                           "not of an accepted shape",
		"orgs/default/projects/p/vpcs/v":                            "not of an accepted shape",
		"/orgs/default/projects/p/vpcs/" + strings.Repeat("v", 300): "300 characters",
	}
	for path, want := range bad {
		_, err := nsx.ParseRouterPath(path)
		if err == nil {
			t.Errorf("ParseRouterPath(%.60q) accepted", path)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, want) || !strings.Contains(msg, nsx.RouterShapes) {
			t.Errorf("ParseRouterPath(%.60q) = %v; want it to say %q and name the accepted shapes", path, err, want)
		}
		if len(msg) > 700 || strings.ContainsAny(msg, "\n\x00\x1b") {
			t.Errorf("ParseRouterPath(%.60q): error %q is long or not printable", path, msg)
		}
	}
	if !(nsx.RouterPath{}).IsZero() {
		t.Error("the zero RouterPath is not IsZero")
	}
}
