package podroute

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// TestGarbageFromNSXNeverDeletes: whatever NSX (or a proxy in front of it)
// answers to the list call, the controller reports an error and retries, or
// re-applies idempotently; it never deletes a route on the strength of a bad
// answer, and never panics.
func TestGarbageFromNSXNeverDeletes(t *testing.T) {
	nsx.RouteSDKLogs(zap.NewNop())
	answers := map[string]nsxsim.FaultRule{
		"HTML error page":      {Status: 502, Body: "<html><h1>502 Bad Gateway</h1></html>"},
		"truncated JSON":       {Status: 200, ContentType: "application/json", Body: `{"results":[{"id":"x","network":"100.96.1.0/24"`},
		"200 with error body":  {Status: 200, ContentType: "application/json", Body: `{"httpStatus":"INTERNAL_SERVER_ERROR","error_code":99,"error_message":"boom"}`},
		"wrong types":          {Status: 200, ContentType: "application/json", Body: `{"results":"not a list","result_count":"many"}`},
		"empty list that lies": {Status: 200, ContentType: "application/json", Body: `{"results":[],"result_count":0}`},
		"huge garbage":         {Status: 500, Body: string(make([]byte, 3<<20))},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			sim := nsxsim.StartTest(t, nsxsim.Options{})
			user, pass := sim.User()
			client, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool()},
				Auth: auth.Basic{Credentials: auth.Static{Username: user, Password: pass}}, Limits: nsx.Limits{MaxRetries: 1, RetryWaitMin: time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			kube := fakeNodes(3)
			// Routes already there: two of ours (one for a node that is gone) and a foreign one.
			d, _ := Desired(us, v4, []Node{{Name: "n00", PodCIDRs: []string{"100.96.0.0/24"}, InternalIPs: []string{"198.51.100.1"}},
				{Name: "gone", PodCIDRs: []string{"100.96.9.0/24"}, InternalIPs: []string{"198.51.100.9"}}})
			var pre []nsx.Route
			for _, r := range d {
				pre = append(pre, r)
			}
			if err := client.Apply(context.Background(), nsx.Tier1Path("t1-routable"), pre, nil); err != nil {
				t.Fatal(err)
			}
			sim.PutRoute("t1-routable", "foreign", "0.0.0.0/0", []string{"203.0.113.1"})
			sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "/static-routes$", Status: answer.Status, ContentType: answer.ContentType, Body: answer.Body})

			c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1-routable"), ClusterCIDRs: v4, Window: time.Millisecond}, kube, client, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = c.reconcile(ctx)
			t.Logf("reconcile: %v", err)
			if _, ok := sim.Route("t1-routable", us.RouteID("100.96.9.0/24")); !ok {
				t.Fatal("a route was deleted on the strength of a bad answer")
			}
			if _, ok := sim.Route("t1-routable", "foreign"); !ok {
				t.Fatal("the foreign route was deleted")
			}
			if err == nil && name != "empty list that lies" {
				t.Fatal("a garbage answer was taken as a valid list")
			}
			// Once NSX answers properly again, the pass converges: the gone node's route goes.
			sim.ClearFaults()
			c.actual.Invalidate()
			if err := c.reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := sim.Route("t1-routable", us.RouteID("100.96.9.0/24")); ok || len(sim.Routes("t1-routable")) != 4 {
				t.Fatalf("not converged after NSX recovered: %d routes", len(sim.Routes("t1-routable")))
			}
		})
	}
}
