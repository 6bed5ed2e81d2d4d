package nsxsim_test

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// asPrincipal is a client of c's simulator authenticating with a client
// certificate for principal name (and no password).
func (c *rawClient) asPrincipal(certPEM, keyPEM []byte) *rawClient {
	c.t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	return &rawClient{t: c.t, sim: c.sim, http: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.sim.CertPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}}
}

// protectionWorld is a simulator with a protected principal identity "pi"
// (t1route's controller in cert mode, or the vSphere cloud provider), an
// unprotected certificate identity "other", and the admin.
func protectionWorld(t *testing.T) (admin, pi, other *rawClient) {
	admin = newRaw(t, nsxsim.Options{PrincipalIdentities: []string{"pi"}, RateLimit: -1})
	piCert, piKey, err := admin.sim.IssueClientCert("pi")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := admin.sim.IssueClientCert("other")
	if err != nil {
		t.Fatal(err)
	}
	return admin, admin.asPrincipal(piCert, piKey), admin.asPrincipal(otherCert, otherKey)
}

func TestProtectionAsEachCallerSeesIt(t *testing.T) {
	admin, pi, other := protectionWorld(t)
	if a := pi.do("PATCH", routesPath+"/p1", routeBody("100.96.1.0/24", "198.51.100.11")); a.status != 200 {
		t.Fatalf("PI creates a route = %d %s", a.status, a.raw)
	}
	if a := admin.do("PATCH", routesPath+"/a1", routeBody("100.96.2.0/24", "198.51.100.12")); a.status != 200 {
		t.Fatalf("admin creates a route = %d %s", a.status, a.raw)
	}
	cases := []struct {
		name   string
		c      *rawClient
		route  string
		want   string
		create string
	}{
		{"the creating PI", pi, "p1", nsxsim.NotProtected, "pi"},
		{"the enterprise admin", admin, "p1", nsxsim.RequireOverride, "pi"},
		{"another certificate identity", other, "p1", nsxsim.Protected, "pi"},
		{"a PI reading the admin's route", pi, "a1", nsxsim.NotProtected, "admin"},
		{"the admin reading its own route", admin, "a1", nsxsim.NotProtected, "admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.c.do("GET", routesPath+"/"+tc.route, "")
			if a.body["_protection"] != tc.want || a.body["_create_user"] != tc.create {
				t.Fatalf("GET %s: _protection=%v _create_user=%v, want %s by %s", tc.route, a.body["_protection"], a.body["_create_user"], tc.want, tc.create)
			}
			// The list and the search say the same.
			list := tc.c.do("GET", routesPath, "")
			for _, r := range list.body["results"].([]any) {
				if m := r.(map[string]any); m["id"] == tc.route && m["_protection"] != tc.want {
					t.Fatalf("list: _protection=%v, want %s", m["_protection"], tc.want)
				}
			}
			s := tc.c.do("GET", "/policy/api/v1/search/query?query=id:"+tc.route, "")
			if res := s.body["results"].([]any); len(res) != 1 || res[0].(map[string]any)["_protection"] != tc.want {
				t.Fatalf("search: %s", s.raw)
			}
		})
	}
}

func TestProtectedSingleObjectCalls(t *testing.T) {
	admin, pi, other := protectionWorld(t)
	const route = routesPath + "/p1"
	cases := []struct {
		name      string
		c         *rawClient
		method    string
		overwrite string // X-Allow-Overwrite sent, "" for none
		allowed   bool
		msg       string // in the refusal
	}{
		{"admin PATCH without the header", admin, "PATCH", "", false, "Principal 'admin' with role '[enterprise_admin]' attempts to delete or modify an object of type StaticRoutes it doesn't own. (createUser=pi, allowOverwrite=null)"},
		{"admin PATCH with the header false", admin, "PATCH", "false", false, "allowOverwrite=false"},
		{"admin PUT without the header", admin, "PUT", "", false, "createUser=pi"},
		{"admin DELETE without the header", admin, "DELETE", "", false, "createUser=pi"},
		{"another identity PATCH", other, "PATCH", "", false, "Principal 'other'"},
		{"another identity DELETE, even with the header", other, "DELETE", "true", false, "allowOverwrite=true"},
		{"the creating PI PATCH", pi, "PATCH", "", true, ""},
		{"the creating PI DELETE", pi, "DELETE", "", true, ""},
		{"admin PATCH with the header", admin, "PATCH", "true", true, ""},
		{"admin PUT with the header", admin, "PUT", "TRUE", true, ""},
		{"admin DELETE with the header", admin, "DELETE", "true", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pi.do("DELETE", route, "")
			if a := pi.do("PATCH", route, routeBody("100.96.1.0/24", "198.51.100.11")); a.status != 200 {
				t.Fatalf("setup: PI creates p1 = %d %s", a.status, a.raw)
			}
			before, _ := admin.sim.Route("t1-routable", "p1")
			body := ""
			switch tc.method {
			case "PATCH":
				body = routeBody("100.96.1.0/24", "198.51.100.99")
			case "PUT":
				body = `{"network":"100.96.1.0/24","next_hops":[{"ip_address":"198.51.100.99"}],"_revision":` + strconv.FormatInt(before.Revision, 10) + `}`
			}
			a := tc.c.do(tc.method, route, body, "X-Allow-Overwrite", tc.overwrite)
			after, exists := admin.sim.Route("t1-routable", "p1")
			if tc.allowed {
				if a.status != 200 {
					t.Fatalf("= %d %s, want 200", a.status, a.raw)
				}
				if tc.method == "DELETE" && exists || tc.method != "DELETE" && after.NextHops[0].IPAddress != "198.51.100.99" {
					t.Fatalf("allowed %s did not happen: exists=%t %+v", tc.method, exists, after.NextHops)
				}
				if exists && (after.CreateUser != "pi" || after.Protection != nsxsim.Protected) {
					t.Fatalf("an overwrite changed ownership: created by %s, %s", after.CreateUser, after.Protection)
				}
				return
			}
			if a.status != 400 || a.errorCode() != nsxsim.CodeProtected || a.body["httpStatus"] != "BAD_REQUEST" || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("= %d %s, want NSX's 400 error_code 289 containing %q", a.status, a.raw, tc.msg)
			}
			if !exists || after.Revision != before.Revision || after.NextHops[0].IPAddress != "198.51.100.11" {
				t.Fatalf("a refused %s changed the route: exists=%t %+v", tc.method, exists, after)
			}
		})
	}

	// What nobody protected, anyone changes.
	other.do("PATCH", routesPath+"/o1", routeBody("100.96.3.0/24", "198.51.100.13"))
	if a := admin.do("DELETE", routesPath+"/o1", ""); a.status != 200 {
		t.Fatalf("admin deleting an unprotected identity's route = %d %s", a.status, a.raw)
	}
	admin.do("PATCH", routesPath+"/a1", routeBody("100.96.4.0/24", "198.51.100.14"))
	if a := pi.do("DELETE", routesPath+"/a1", ""); a.status != 200 {
		t.Fatalf("PI deleting the admin's route = %d %s", a.status, a.raw)
	}
	// A protected Tier-1 too.
	if a := pi.do("PATCH", "/policy/api/v1/infra/tier-1s/t1-pi", `{"route_advertisement_types":["TIER1_STATIC_ROUTES"]}`); a.status != 200 {
		t.Fatalf("PI creates a Tier-1 = %d %s", a.status, a.raw)
	}
	if a := admin.do("PATCH", "/policy/api/v1/infra/tier-1s/t1-pi", `{"route_advertisement_types":[]}`); a.status != 400 || a.errorCode() != nsxsim.CodeProtected ||
		!strings.Contains(a.raw, "object of type Tier1") {
		t.Fatalf("admin changing the PI's Tier-1 = %d %s", a.status, a.raw)
	}
}

func TestProtectedHierarchicalChildren(t *testing.T) {
	admin, pi, other := protectionWorld(t)
	setup := func() {
		t.Helper()
		for _, id := range []string{"p1", "p2", "a1", "new"} {
			admin.do("DELETE", routesPath+"/"+id, "", "X-Allow-Overwrite", "true")
		}
		for _, r := range []struct {
			c       *rawClient
			id, net string
		}{{pi, "p1", "100.96.1.0/24"}, {pi, "p2", "100.96.2.0/24"}, {admin, "a1", "100.96.3.0/24"}} {
			if a := r.c.do("PATCH", routesPath+"/"+r.id, routeBody(r.net, "198.51.100.1")); a.status != 200 {
				t.Fatalf("setup %s = %d %s", r.id, a.status, a.raw)
			}
		}
	}
	// Deletes the admin's a1, creates "new", replaces p1 and deletes p2.
	body := hierBody(child("a1", "", "", true), child("new", "100.96.9.0/24", "198.51.100.9", false),
		child("p1", "100.96.1.0/24", "198.51.100.7", false), child("p2", "", "", true))
	cases := []struct {
		name      string
		c         *rawClient
		overwrite string
		allowed   bool
	}{
		{"admin without the header", admin, "", false},
		{"admin with the header false", admin, "false", false},
		{"another identity with the header", other, "true", false},
		{"admin with the header", admin, "true", true},
		{"the creating PI", pi, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setup()
			before := admin.sim.Routes("t1-routable")
			a := tc.c.do("PATCH", "/policy/api/v1/infra", body, "X-Allow-Overwrite", tc.overwrite)
			after := admin.sim.Routes("t1-routable")
			if tc.allowed {
				ids := []string{}
				for _, r := range after {
					ids = append(ids, r.ID)
				}
				if a.status != 200 || strings.Join(ids, ",") != "new,p1" {
					t.Fatalf("= %d %s; routes %v, want new,p1", a.status, a.raw, ids)
				}
				return
			}
			if a.status != 400 || a.errorCode() != nsxsim.CodeProtected {
				t.Fatalf("= %d %s, want 400 error_code 289", a.status, a.raw)
			}
			// Both protected children are named; the call changed nothing.
			rel, _ := a.body["related_errors"].([]any)
			if len(rel) != 2 || !strings.Contains(a.raw, "children[0].children[2] (StaticRoutes id=p1)") ||
				!strings.Contains(a.raw, "children[0].children[3] (StaticRoutes id=p2)") || !strings.Contains(a.raw, "createUser=pi") {
				t.Fatalf("refusal does not name both protected children: %s", a.raw)
			}
			for _, r := range rel {
				if r.(map[string]any)["error_code"] != float64(nsxsim.CodeProtected) {
					t.Fatalf("related error %v", r)
				}
			}
			if len(after) != len(before) {
				t.Fatalf("a refused hierarchical call changed the routes: %d -> %d", len(before), len(after))
			}
			for i := range after {
				if after[i].ID != before[i].ID || after[i].Revision != before[i].Revision {
					t.Fatalf("a refused hierarchical call changed %s", after[i].ID)
				}
			}
		})
	}
}

func TestPrincipalIdentityNames(t *testing.T) {
	for _, bad := range []string{"", "a/b", "..", "has space", strings.Repeat("x", 129)} {
		if _, err := nsxsim.New(nsxsim.Options{PrincipalIdentities: []string{bad}}); err == nil {
			t.Errorf("principal identity %q accepted", bad)
		}
	}
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	if _, _, err := sim.AddPrincipalIdentity("ok-name_1.x"); err != nil {
		t.Fatal(err)
	}
}
