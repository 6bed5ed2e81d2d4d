package nsx_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// newPrincipalClient is a client authenticating with a client certificate
// only, as t1route's controller in certificate mode.
func newPrincipalClient(t *testing.T, sim *nsxsim.Simulator, name string) *nsx.Client {
	t.Helper()
	certPEM, keyPEM, err := sim.IssueClientCert(name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Routes a protected principal identity created: the admin's gc is refused
// with a typed error naming the creator, and succeeds under WithAllowOverwrite,
// the header set by the transport on every attempt (retries included).
func TestAllowOverwrite(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{PrincipalIdentities: []string{"t1route-pi"}})
	pi := newPrincipalClient(t, sim, "t1route-pi")
	admin := newClient(t, sim, nsx.Config{Limits: fastRetries})
	ctx := context.Background()
	routes := makeRoutes(3, "r")
	if err := pi.Apply(ctx, t1Path, routes, nil); err != nil {
		t.Fatal(err)
	}

	ids := []string{routes[0].ID, routes[1].ID}
	err := admin.Apply(ctx, t1Path, nil, ids)
	var apiErr *nsx.APIError
	var batch *nsx.BatchError
	switch {
	case !nsx.IsProtected(err), !errors.As(err, &apiErr), !errors.As(err, &batch):
		t.Fatalf("admin deleting the PI's routes: %v; want a protection refusal in a *BatchError", err)
	case apiErr.ErrorCode != nsx.ErrorCodeProtected || apiErr.StatusCode != 400 || len(apiErr.RelatedErrors) != 2:
		t.Fatalf("APIError = %+v", apiErr)
	case nsx.ProtectedBy(err) != "t1route-pi":
		t.Fatalf("ProtectedBy = %q, want t1route-pi", nsx.ProtectedBy(err))
	case nsx.IsTemporary(err):
		t.Fatal("a protection refusal must not be retried")
	}
	if len(sim.Routes("t1-routable")) != 3 {
		t.Fatal("a refused delete deleted something")
	}

	// With the override; a 503 first proves every attempt carries the header.
	sim.AddFault(nsxsim.FaultRule{Method: "PATCH", Status: 503, Count: 1})
	if err := admin.Apply(nsx.WithAllowOverwrite(ctx), t1Path, nil, ids); err != nil {
		t.Fatalf("admin deleting with WithAllowOverwrite: %v", err)
	}
	if got := sim.Routes("t1-routable"); len(got) != 1 || got[0].ID != routes[2].ID {
		t.Fatalf("after the overriding delete: %+v", got)
	}
	if st := sim.Stats(); st.Faults["503"] != 1 {
		t.Fatalf("the fault did not fire: %v", st.Faults)
	}
	// The context is per call: the next call without it is refused again.
	if err := admin.Apply(ctx, t1Path, nil, []string{routes[2].ID}); !nsx.IsProtected(err) {
		t.Fatalf("a later call without the override: %v", err)
	}
	// Another principal identity is refused even with the header.
	other := newPrincipalClient(t, sim, "other-pi")
	if err := other.Apply(nsx.WithAllowOverwrite(ctx), t1Path, nil, []string{routes[2].ID}); !nsx.IsProtected(err) {
		t.Fatalf("another principal identity with the header: %v", err)
	}
}

// Recognising the refusal from NSX's own bodies (testdata/), whatever the
// status a proxy or version answers with, and nothing else.
func TestIsProtected(t *testing.T) {
	cases := []struct {
		name, file string
		status     int
		body       string
		protected  bool
		creator    string
	}{
		{"single object", "testdata/protected-route.json", 400, "", true, "vsphere-cloud-provider"},
		{"hierarchical children", "testdata/protected-children.json", 400, "", true, "t1route-pi"},
		{"as a 403", "testdata/protected-route.json", 403, "", true, "vsphere-cloud-provider"},
		{"without the creator", "", 400, `{"error_code":289,"error_message":"object is protected"}`, true, ""},
		{"another 400", "", 400, `{"error_code":255,"error_message":"Field level validation errors: createUser=x"}`, false, ""},
		{"not found", "", 404, `{"error_code":600,"error_message":"The path=[/x] is invalid"}`, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.file != "" {
				b, err := os.ReadFile(tc.file)
				if err != nil {
					t.Fatal(err)
				}
				body = string(b)
			}
			sim := nsxsim.StartTest(t, nsxsim.Options{})
			sim.AddFault(nsxsim.FaultRule{Method: "PATCH", Status: tc.status, Body: body, ContentType: "application/json"})
			err := newClient(t, sim, nsx.Config{}).Apply(context.Background(), t1Path, nil, []string{"r1"})
			if err == nil {
				t.Fatal("no error")
			}
			if got := nsx.IsProtected(err); got != tc.protected {
				t.Fatalf("IsProtected(%v) = %t, want %t", err, got, tc.protected)
			}
			if got := nsx.ProtectedBy(err); got != tc.creator {
				t.Fatalf("ProtectedBy = %q, want %q", got, tc.creator)
			}
		})
	}
	if nsx.IsProtected(nil) || nsx.IsProtected(errors.New("createUser=x")) || nsx.ProtectedBy(nil) != "" {
		t.Fatal("not an NSX answer, yet protected")
	}
}
