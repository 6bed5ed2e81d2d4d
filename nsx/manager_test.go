package nsx_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// stdLog captures the standard logger, where go-vmware-nsxt writes, for
// the duration of a test.
func stdLog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	return &buf
}

func TestManagerStatus(t *testing.T) {
	ctx := context.Background()
	t.Run("stable and degraded", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{Version: "4.2.1.0.0.24304122"})
		c := newClient(t, sim, nsx.Config{})
		st, err := c.ManagerStatus(ctx)
		if err != nil || st.Version != "4.2.1.0.0.24304122" || st.Cluster != nsx.ClusterStable || st.ClusterErr != nil {
			t.Fatalf("= %+v, %v", st, err)
		}
		sim.SetClusterStatus(nsx.ClusterDegraded)
		if st, err = c.ManagerStatus(ctx); err != nil || st.Cluster != nsx.ClusterDegraded {
			t.Fatalf("degraded cluster: %+v, %v", st, err)
		}
	})
	t.Run("session auth", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		u, p := sim.User()
		c := newClient(t, sim, nsx.Config{Auth: &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: u, Password: p}}})
		if st, err := c.ManagerStatus(ctx); err != nil || st.Version == "" || sim.Stats().Logins != 1 {
			t.Fatalf("= %+v, %v after %d logins", st, err, sim.Stats().Logins)
		}
	})
	t.Run("a 503 burst is retried by the transport alone", func(t *testing.T) {
		out := stdLog(t)
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "^/api/v1/node$", Status: 503, Count: 3})
		c := newClient(t, sim, nsx.Config{Limits: fastRetries})
		st, err := c.ManagerStatus(ctx)
		if err != nil || st.Version == "" {
			t.Fatalf("= %+v, %v", st, err)
		}
		s := sim.Stats()
		if s.Requests != 5 || s.ByStatus[503] != 3 { // node: 3 × 503 + 1; cluster status: 1
			t.Fatalf("the simulator saw %d requests (%v); want 3 refused + 1 + 1", s.Requests, s.ByStatus)
		}
		if out.Len() > 0 {
			t.Fatalf("the standard logger got %q", out)
		}
	})
	t.Run("no answer: no retries on top of the transport's", func(t *testing.T) {
		out := stdLog(t)
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "^/api/v1/node$", Reset: true})
		lim := fastRetries
		lim.MaxRetries = 2
		c := newClient(t, sim, nsx.Config{Limits: lim})
		_, err := c.ManagerStatus(ctx)
		var te *nsx.TransportError
		if !errors.As(err, &te) || te.Path != "/api/v1/node" {
			t.Fatalf("= %v; want a *nsx.TransportError", err)
		}
		// go-vmware-nsxt retries a request that got no response once more,
		// which would run the transport's 1 + 2 attempts again.
		if n := sim.Stats().Requests; n != 3 {
			t.Fatalf("the simulator saw %d requests; want the transport's 1 + 2", n)
		}
		if strings.Contains(out.String(), "Retrying") || out.Len() > 0 {
			t.Fatalf("the standard logger got %q", out)
		}
	})
	t.Run("refused credentials", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		c := newClient(t, sim, nsx.Config{Auth: auth.Basic{Credentials: auth.Static{Username: "admin", Password: "wrong"}}, Limits: fastRetries})
		_, err := c.ManagerStatus(ctx)
		var e *nsx.APIError
		if !errors.As(err, &e) || e.StatusCode != 403 || sim.Stats().Requests != 1 {
			t.Fatalf("= %v after %d requests", err, sim.Stats().Requests)
		}
		if line := nsx.Explain(err); !strings.Contains(line, "refused the credentials") {
			t.Fatalf("Explain = %q", line)
		}
	})
	t.Run("cluster status unreadable", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "^/api/v1/cluster/status$", Status: 403})
		st, err := newClient(t, sim, nsx.Config{}).ManagerStatus(ctx)
		var e *nsx.APIError
		if err != nil || st.Version == "" || st.Cluster != "" || !errors.As(st.ClusterErr, &e) || e.StatusCode != 403 {
			t.Fatalf("= %+v, %v", st, err)
		}
	})
	t.Run("cluster status missing", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "^/api/v1/cluster/status$", Status: 200, ContentType: "application/json", Body: `{"cluster_id":"x"}`})
		st, err := newClient(t, sim, nsx.Config{}).ManagerStatus(ctx)
		if err != nil || st.Cluster != "" || st.ClusterErr == nil {
			t.Fatalf("= %+v, %v", st, err)
		}
	})
	t.Run("the caller's deadline reaches the request", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "^/api/v1/node$", Delay: time.Minute})
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := newClient(t, sim, nsx.Config{}).ManagerStatus(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("= %v", err)
		}
	})
}
