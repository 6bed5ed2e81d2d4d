package nsx_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

const (
	projectTier1 = "/orgs/default/projects/tenant-a/infra/tier-1s/t1-pods"
	vpcRouter    = "/orgs/default/projects/tenant-a/vpcs/vpc-pods"
)

// TestClientOnEveryShape: on each of the three router shapes, the client
// applies routes in hierarchical batches (2,500 routes, 1,000 a call),
// lists them across pages, reads them as realized from the forwarding table
// (one call per 1,000 routes, no per-route call), and deletes them, through
// the endpoints NSX has for that shape.
func TestClientOnEveryShape(t *testing.T) {
	for _, path := range []string{"/infra/tier-1s/t1-routable", projectTier1, vpcRouter} {
		t.Run(path, func(t *testing.T) {
			router := nsx.MustRouterPath(path)
			sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{projectTier1, vpcRouter}, RateLimit: -1})
			c := newClient(t, sim, nsx.Config{})
			ctx := context.Background()
			routes := makeRoutes(2500, "r")
			sim.ResetStats()
			if err := c.Apply(ctx, router, routes, nil); err != nil {
				t.Fatal(err)
			}
			if st := sim.Stats(); st.HierarchicalCalls != 3 {
				t.Fatalf("%d hierarchical calls for 2,500 routes, want 3", st.HierarchicalCalls)
			}
			if got := sim.RouteCount(path); got != 2500 {
				t.Fatalf("the simulator holds %d routes on %s, want 2500", got, path)
			}
			if other := sim.RouteCount("t1-routable") + sim.RouteCount(projectTier1) + sim.RouteCount(vpcRouter) - 2500; other != 0 {
				t.Fatalf("%d routes landed on another router", other)
			}
			listed, err := c.ListRoutes(ctx, router)
			if err != nil || len(listed) != 2500 || listed[0].Path != router.RoutePath(listed[0].ID) {
				t.Fatalf("ListRoutes = %d routes (first path %q), %v", len(listed), listed[0].Path, err)
			}
			sim.ResetStats()
			states, err := c.RealizeRoutes(ctx, router, listed)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range states {
				if s.State != nsx.StateRealized {
					t.Fatalf("route %d: %+v", i, s)
				}
			}
			if st := sim.Stats(); st.Requests != 3 {
				t.Fatalf("realizing 2,500 routes took %d requests, want 3 forwarding-table pages", st.Requests)
			}
			// Per-route realized state, from the space's own endpoint.
			one, err := c.Realized(ctx, listed[7].Path)
			if err != nil || one.State != nsx.StateRealized {
				t.Fatalf("Realized(%s) = %+v, %v", listed[7].Path, one, err)
			}
			ids := make([]string, len(listed))
			for i, r := range listed {
				ids[i] = r.ID
			}
			if err := c.Apply(ctx, router, nil, ids); err != nil {
				t.Fatal(err)
			}
			if got := sim.RouteCount(path); got != 0 {
				t.Fatalf("%d routes left after deleting them all", got)
			}
		})
	}
}

// TestVPCWithoutForwardingTable: a manager without the VPC forwarding-table
// endpoint (before NSX 9) answers 404; realization falls back to each
// route's realized state, from the project's endpoint.
func TestVPCWithoutForwardingTable(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{vpcRouter}, RateLimit: -1})
	if err := sim.AddFault(nsxsim.FaultRule{Path: "/vpcs/vpc-pods/forwarding-table$", Status: http.StatusNotFound}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim, nsx.Config{})
	router := nsx.MustRouterPath(vpcRouter)
	ctx := context.Background()
	if err := c.Apply(ctx, router, makeRoutes(5, "v"), nil); err != nil {
		t.Fatal(err)
	}
	listed, err := c.ListRoutes(ctx, router)
	if err != nil {
		t.Fatal(err)
	}
	sim.SetRealizationError(vpcRouter, listed[2].ID, "edge refused it")
	states, err := c.RealizeRoutes(ctx, router, listed)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range states {
		want := nsx.StateRealized
		if i == 2 {
			want = nsx.StateError
		}
		if s.State != want || s.Err != nil {
			t.Fatalf("route %d: %+v, want %s", i, s, want)
		}
	}
}

// TestProjectUserIsRefusedInfra: a user whose role reaches only its project
// works on the project's Tier-1 and VPC, and is refused /infra with an error
// the client tells apart from refused credentials, and Explain words as a
// role that does not reach the path.
func TestProjectUserIsRefusedInfra(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{projectTier1, vpcRouter}, RateLimit: -1,
		Users: map[string]string{"alice": "alice-pw"}, ProjectUsers: map[string]string{"alice": "/orgs/default/projects/tenant-a"}})
	c, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12},
		Auth: auth.Basic{Credentials: auth.Static{Username: "alice", Password: "alice-pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, path := range []string{projectTier1, vpcRouter} {
		if err := c.Apply(ctx, nsx.MustRouterPath(path), makeRoutes(3, "a"), nil); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	err = c.Apply(ctx, t1Path, makeRoutes(3, "a"), nil)
	if !nsx.IsNotAuthorized(err) || nsx.IsTemporary(err) {
		t.Fatalf("Apply on /infra as a project user: %v; want a not-authorized refusal", err)
	}
	if msg := nsx.Explain(err); !strings.Contains(msg, "role does not allow") || !strings.Contains(msg, "NSXT_ROUTER_PATH") {
		t.Fatalf("Explain = %q", msg)
	}
	if sim.RouteCount("t1-routable") != 0 {
		t.Fatal("a refused call changed routes")
	}
}
