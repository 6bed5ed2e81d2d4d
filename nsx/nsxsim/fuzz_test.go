package nsxsim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHierarchicalPatch: whatever body a client sends to PATCH /infra, the
// simulator answers 200, 400 or 404 as NSX would, never a 500 or a panic,
// and a refused call changes nothing.
func FuzzHierarchicalPatch(f *testing.F) {
	f.Add([]byte(`{"resource_type":"Infra","children":[{"resource_type":"ChildResourceReference","id":"t1-routable","target_type":"Tier1","children":[{"resource_type":"ChildStaticRoutes","StaticRoutes":{"id":"r1","network":"100.96.1.0/24","next_hops":[{"ip_address":"198.51.100.1"}]}}]}]}`))
	f.Add([]byte(`{"resource_type":"Infra","children":[{"resource_type":"ChildResourceReference","id":"t1-routable","target_type":"Tier1","children":[{"resource_type":"ChildStaticRoutes","marked_for_delete":true,"StaticRoutes":{"id":"r1"}}]}]}`))
	f.Add([]byte(`{"resource_type":"Infra","children":[{"resource_type":"ChildTier1","Tier1":{"id":"t1-x","children":[]}}]}`))
	f.Add([]byte(`{"children":[{"resource_type":"ChildStaticRoutes"}]}`))
	f.Add([]byte(`{"children":null}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"children":[{"resource_type":"ChildResourceReference","id":"t1-routable","target_type":"Tier1","children":[{"resource_type":"ChildStaticRoutes","StaticRoutes":{"id":"a/b","network":"::/0","next_hops":[{"ip_address":"1.2.3.4","admin_distance":-1}]}}]}]}`))
	sim, err := New(Options{RateLimit: -1, ClientConcurrency: -1, GlobalConcurrency: -1, Users: map[string]string{"admin": "pw"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(sim.Routes("t1-routable"))
		req := httptest.NewRequest("PATCH", "/policy/api/v1/infra", bytes.NewReader(body))
		req.SetBasicAuth("admin", "pw")
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			if after := len(sim.Routes("t1-routable")); after != before {
				t.Fatalf("a refused call changed the route count from %d to %d", before, after)
			}
			if !bytes.Contains(rec.Body.Bytes(), []byte(`"error_code"`)) {
				t.Fatalf("error without an NSX body: %s", rec.Body.String())
			}
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body.String())
		}
	})
}
