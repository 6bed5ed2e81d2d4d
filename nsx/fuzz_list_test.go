package nsx_test

import (
	"context"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// FuzzListRoutesAnswer: whatever NSX answers 200 to a list call, the client
// returns routes or an error, never panics, and never returns a route
// without an ID (which a caller could not address).
func FuzzListRoutesAnswer(f *testing.F) {
	f.Add(`{"results":[{"id":"r1","network":"100.96.1.0/24","next_hops":[{"ip_address":"198.51.100.1","admin_distance":1}],"tags":[{"scope":"s","tag":"t"}],"_revision":3}],"result_count":1}`)
	f.Add(`{"results":[],"result_count":0}`)
	f.Add(`{"results":[{"network":"100.96.1.0/24"}],"result_count":1}`)
	f.Add(`{"results":[{"id":7}],"result_count":1}`)
	f.Add(`{"results":null,"result_count":-1,"cursor":""}`)
	f.Add(`{"results":[{"id":"r","next_hops":[{"ip_address":null,"admin_distance":"x"}]}],"result_count":1}`)
	f.Add(`{"httpStatus":"OK"}`)
	sim := nsxsim.StartTest(f, nsxsim.Options{RateLimit: -1, ClientConcurrency: -1, GlobalConcurrency: -1})
	client := newClient(f, sim, nsx.Config{Limits: nsx.Limits{MaxRetries: -1, RequestTimeout: 5 * time.Second}})
	f.Fuzz(func(t *testing.T, body string) {
		sim.ClearFaults()
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "/static-routes$", Status: 200, ContentType: "application/json", Body: body, Count: 1})
		routes, err := client.ListRoutes(context.Background(), t1Path)
		if err != nil {
			return
		}
		for _, r := range routes {
			if r.ID == "" {
				t.Fatalf("a route without an ID was returned from %q", body)
			}
		}
	})
}
