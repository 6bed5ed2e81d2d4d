package nsx_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

var t1Path = nsx.MustRouterPath("/infra/tier-1s/t1-routable")

func TestMain(m *testing.M) {
	nsx.RouteSDKLogs(zap.NewNop())
	os.Exit(m.Run())
}

// fastRetries keeps retry tests quick; production defaults are 250 ms–30 s.
var fastRetries = nsx.Limits{RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond, MaxRetries: 20}

func newClient(t testing.TB, sim *nsxsim.Simulator, cfg nsx.Config) *nsx.Client {
	t.Helper()
	u, p := sim.User()
	cfg.Host = sim.URL()
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}
	}
	if cfg.Auth == nil {
		cfg.Auth = auth.Basic{Credentials: auth.Static{Username: u, Password: p}}
	}
	c, err := nsx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeRoutes(n int, prefix string) []nsx.Route {
	out := make([]nsx.Route, n)
	for i := range out {
		out[i] = nsx.Route{
			ID:       fmt.Sprintf("%s-%05d", prefix, i),
			Network:  fmt.Sprintf("100.%d.%d.0/24", 96+i/256, i%256),
			NextHops: []nsx.NextHop{{IP: fmt.Sprintf("198.51.100.%d", 1+i%250)}},
			Tags:     []nsx.Tag{{Scope: "t1route/cluster-uid", Tag: "uid-1"}},
		}
	}
	return out
}

// assertExactly checks the simulator holds exactly routes (IDs, networks, next hops).
func assertExactly(t *testing.T, sim *nsxsim.Simulator, routes []nsx.Route) {
	t.Helper()
	got := sim.Routes("t1-routable")
	if len(got) != len(routes) {
		t.Fatalf("simulator holds %d routes, want %d", len(got), len(routes))
	}
	want := map[string]nsx.Route{}
	for _, r := range routes {
		want[r.ID] = r
	}
	for _, g := range got {
		w, ok := want[g.ID]
		if !ok || g.Network != w.Network || len(g.NextHops) != 1 || g.NextHops[0].IPAddress != w.NextHops[0].IP {
			t.Fatalf("route %s = %s via %v, want %+v", g.ID, g.Network, g.NextHops, w)
		}
	}
}

func TestTier1(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddTier1("t1-noadv", "TIER1_CONNECTED")
	c := newClient(t, sim, nsx.Config{})
	t1, err := c.Tier1(context.Background(), t1Path)
	if err != nil || t1.ID != "t1-routable" || !t1.AdvertisesStaticRoutes() {
		t.Fatalf("Tier1 = %+v, %v", t1, err)
	}
	t1, err = c.Tier1(context.Background(), nsx.Tier1Path("t1-noadv"))
	if err != nil || t1.AdvertisesStaticRoutes() {
		t.Fatalf("Tier1 without static route advertisement = %+v, %v", t1, err)
	}
	if _, err := c.Tier1(context.Background(), nsx.RouterPath{}); err == nil {
		t.Error("Tier1 of no router path accepted")
	}
	if _, err := c.Tier1(context.Background(), nsx.MustRouterPath("/orgs/default/projects/p/vpcs/v")); err == nil {
		t.Error("Tier1 of a VPC path accepted")
	}
}

func TestListRoutesFollowsCursor(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	c := newClient(t, sim, nsx.Config{})
	routes := makeRoutes(2500, "r")
	if err := c.Apply(context.Background(), t1Path, routes, nil); err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()
	got, err := c.ListRoutes(context.Background(), t1Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2500 {
		t.Fatalf("ListRoutes returned %d routes, want 2500", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ID] || r.Path == "" || len(r.Tags) != 1 {
			t.Fatalf("route %+v duplicated or incomplete", r)
		}
		seen[r.ID] = true
	}
	if gets := sim.Stats().ByMethod["GET"]; gets != 3 {
		t.Fatalf("listing 2500 routes took %d GETs, want 3 pages of 1000", gets)
	}
}

func TestApplyBatchesUpsertsAndDeletes(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	c := newClient(t, sim, nsx.Config{})
	ctx := context.Background()
	initial := makeRoutes(2500, "r")
	if err := c.Apply(ctx, t1Path, initial, nil); err != nil {
		t.Fatal(err)
	}
	if calls := sim.Stats().HierarchicalCalls; calls != 3 {
		t.Fatalf("2500 upserts took %d hierarchical calls, want 3", calls)
	}
	// Delete the first 1200, re-point the rest, add 300 more, all at once.
	var deletes []string
	for _, r := range initial[:1200] {
		deletes = append(deletes, r.ID)
	}
	upserts := append([]nsx.Route{}, initial[1200:]...)
	for i := range upserts {
		upserts[i].NextHops = []nsx.NextHop{{IP: "203.0.113.7"}}
	}
	upserts = append(upserts, makeRoutes(300, "new")...)
	sim.ResetStats()
	if err := c.Apply(ctx, t1Path, upserts, append(deletes, "never-existed")); err != nil {
		t.Fatal(err)
	}
	if calls := sim.Stats().HierarchicalCalls; calls != 3 { // 2801 children in batches of 1000
		t.Fatalf("2801 changes took %d calls, want 3", calls)
	}
	assertExactly(t, sim, upserts)

	// BatchSize is configurable.
	small := newClient(t, sim, nsx.Config{BatchSize: 100})
	sim.ResetStats()
	if err := small.Apply(ctx, t1Path, makeRoutes(250, "s"), nil); err != nil {
		t.Fatal(err)
	}
	if calls := sim.Stats().HierarchicalCalls; calls != 3 {
		t.Fatalf("250 upserts at BatchSize 100 took %d calls, want 3", calls)
	}
}

func TestRetriesLoseNothing(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	for _, rule := range []string{
		// Each kind fires for sure on the first calls, then at random.
		"method=PATCH,status=429,count=2",
		"method=PATCH,status=503,count=2",
		"method=PATCH,reset,count=2",
		"method=GET,status=502,count=1",
		"method=PATCH,status=429,p=0.25",
		"method=PATCH,status=503,p=0.2",
		"method=PATCH,reset,p=0.15",
		"method=GET,status=502,p=0.2",
		"method=GET,status=504,p=0.1",
	} {
		f, err := nsxsim.ParseFaultRule(rule)
		if err != nil {
			t.Fatal(err)
		}
		sim.AddFault(f)
	}
	var attempts, calls atomic.Int64
	c := newClient(t, sim, nsx.Config{BatchSize: 100, Limits: fastRetries, Observe: func(_ string, _, n int, _ time.Duration) {
		calls.Add(1)
		attempts.Add(int64(n))
	}})
	routes := makeRoutes(2500, "r")
	if err := c.Apply(context.Background(), t1Path, routes, nil); err != nil {
		t.Fatalf("Apply through faults: %v", err)
	}
	assertExactly(t, sim, routes)
	got, err := c.ListRoutes(context.Background(), t1Path)
	if err != nil || len(got) != 2500 {
		t.Fatalf("ListRoutes through faults = %d, %v", len(got), err)
	}
	st := sim.Stats()
	if st.Faults["429"] < 2 || st.Faults["503"] < 2 || st.Faults["reset"] < 2 || st.Faults["502"] < 1 {
		t.Fatalf("faults did not fire: %v", st.Faults)
	}
	t.Logf("faults injected %v; %d attempts for %d calls", st.Faults, attempts.Load(), calls.Load())
}

func TestRetryAfterIsObeyed(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 429, RetryAfter: 1, Count: 1})
	c := newClient(t, sim, nsx.Config{Limits: fastRetries})
	start := time.Now()
	if _, err := c.Tier1(context.Background(), t1Path); err != nil {
		t.Fatal(err)
	}
	// The backoff alone would wait at most 20 ms; Retry-After says 1 s.
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before the server's Retry-After of 1s", waited)
	}
}

func TestRetriesGiveUpWithTheLastAnswer(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 503})
	var attempts int
	lim := fastRetries
	lim.MaxRetries = 3
	c := newClient(t, sim, nsx.Config{Limits: lim, Observe: func(_ string, _, n int, _ time.Duration) { attempts = n }})
	_, err := c.Tier1(context.Background(), t1Path)
	var apiErr *nsx.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !apiErr.Temporary() || !nsx.IsTemporary(err) {
		t.Fatalf("error = %T %v, want a temporary *APIError 503", err, err)
	}
	if attempts != 4 {
		t.Fatalf("%d attempts, want 1 + 3 retries", attempts)
	}
	// 400s are not retried.
	sim.ClearFaults()
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 400})
	c.Tier1(context.Background(), t1Path)
	if attempts != 1 {
		t.Fatalf("a 400 was attempted %d times", attempts)
	}
}

// TestClientLimitsPreventRateLimiting sends a burst of 2,000 calls and checks
// the client-side limits keep every one under the simulator's limits, with
// retries off so that any 429 would surface. The same burst without client
// limits is rate limited: the control proves the test can fail.
func TestClientLimitsPreventRateLimiting(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 4,000 requests")
	}
	burst := func(lim nsx.Limits) (errs int, st nsxsim.StatsSnapshot) {
		// NSX's 40 concurrent requests per client, its rate limit scaled 10x to
		// keep the test short, and 20 ms a call so that requests overlap.
		sim := nsxsim.StartTest(t, nsxsim.Options{RateLimit: 1000, ClientConcurrency: 40, Latency: 20 * time.Millisecond})
		lim.MaxRetries = -1
		c := newClient(t, sim, nsx.Config{Limits: lim})
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 2000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Tier1(context.Background(), t1Path); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(failed.Load()), sim.Stats()
	}
	errs, st := burst(nsx.Limits{RateLimit: 500, MaxInFlight: 10})
	if errs != 0 || st.RateLimited != 0 || st.Busy != 0 {
		t.Fatalf("with client limits: %d failed calls, %d 429s, %d 503s", errs, st.RateLimited, st.Busy)
	}
	errs, st = burst(nsx.Limits{RateLimit: 1e6, Burst: 1e6, MaxInFlight: 200})
	if errs == 0 || st.RateLimited == 0 {
		t.Fatalf("control: 2,000 unthrottled calls were never rate limited (%d failed)", errs)
	}
	t.Logf("control without client limits: %d of 2000 calls failed, %d 429s", errs, st.RateLimited)
}

func TestErrorsAreTyped(t *testing.T) {
	ctx := context.Background()
	noRetry := nsx.Limits{MaxRetries: -1}

	t.Run("not found", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		_, err := newClient(t, sim, nsx.Config{}).Tier1(ctx, nsx.Tier1Path("absent"))
		var e *nsx.APIError
		if !errors.As(err, &e) || e.StatusCode != 404 || e.ErrorCode != nsx.ErrorCodeNotFound || !nsx.IsNotFound(err) || e.Temporary() {
			t.Fatalf("= %T %v", err, err)
		}
	})
	t.Run("bad child names the route", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		routes := makeRoutes(3, "r")
		routes[1].NextHops[0].IP = "2001:db8::1"
		err := newClient(t, sim, nsx.Config{}).Apply(ctx, t1Path, routes, nil)
		var be *nsx.BatchError
		var e *nsx.APIError
		if !errors.As(err, &be) || !errors.As(err, &e) || e.StatusCode != 400 || len(e.RelatedErrors) != 1 ||
			!strings.Contains(e.RelatedErrors[0].Message, "r-00001") || len(be.Upserts) != 3 || be.Applied != 0 {
			t.Fatalf("= %T %v", err, err)
		}
		if n := len(sim.Routes("t1-routable")); n != 0 {
			t.Fatalf("a refused batch left %d routes", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		c := newClient(t, sim, nsx.Config{Auth: auth.Basic{Credentials: auth.Static{Username: "admin", Password: "wrong"}}})
		_, err := c.Tier1(ctx, t1Path)
		var e *nsx.APIError
		if !errors.As(err, &e) || e.StatusCode != 403 || e.ErrorCode != 403 || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("= %v", err)
		}
	})
	garbage := []struct {
		name string
		rule nsxsim.FaultRule
		want string
	}{
		{"HTML from a proxy", nsxsim.FaultRule{Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"}, "not an NSX error (text/html"},
		{"truncated JSON", nsxsim.FaultRule{Status: 500, ContentType: "application/json", Body: `{"httpStatus":"INTERNAL_SERVER_ERROR","error_co`}, "not an NSX error (application/json"},
		{"huge body", nsxsim.FaultRule{Status: 500, Body: strings.Repeat("x", 200000)}, "over 65536 bytes)"},
	}
	for _, g := range garbage {
		t.Run(g.name, func(t *testing.T) {
			sim := nsxsim.StartTest(t, nsxsim.Options{})
			sim.AddFault(g.rule)
			_, err := newClient(t, sim, nsx.Config{Limits: noRetry}).ListRoutes(ctx, t1Path)
			var e *nsx.APIError
			if !errors.As(err, &e) || !strings.Contains(e.Message, g.want) || len(err.Error()) > 600 {
				t.Fatalf("= %v", err)
			}
		})
	}
	t.Run("200 with garbage", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Status: 200, ContentType: "application/json", Body: `{"results": "not a list"}`})
		_, err := newClient(t, sim, nsx.Config{Limits: noRetry}).ListRoutes(ctx, t1Path)
		if err == nil || !strings.Contains(err.Error(), "HTTP 200") {
			t.Fatalf("= %v", err)
		}
	})
	t.Run("200 with an error body is not an empty list", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Status: 200, ContentType: "application/json", Body: `{"httpStatus":"INTERNAL_SERVER_ERROR","error_code":99,"error_message":"boom"}`})
		routes, err := newClient(t, sim, nsx.Config{Limits: noRetry}).ListRoutes(ctx, t1Path)
		if err == nil || !strings.Contains(err.Error(), "not a list") {
			t.Fatalf("= %d routes, %v", len(routes), err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		c := newClient(t, sim, nsx.Config{Limits: nsx.Limits{MaxRetries: 1, RetryWaitMin: time.Millisecond}})
		sim.Close()
		_, err := c.Tier1(ctx, t1Path)
		var te *nsx.TransportError
		if !errors.As(err, &te) || !nsx.IsTemporary(err) {
			t.Fatalf("= %T %v", err, err)
		}
	})
	t.Run("untrusted certificate is not retried", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		var attempts int
		c := newClient(t, sim, nsx.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Observe: func(_ string, _, n int, _ time.Duration) { attempts = n }})
		_, err := c.Tier1(ctx, t1Path)
		var te *nsx.TransportError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "certificate") || attempts != 1 {
			t.Fatalf("= %v after %d attempts", err, attempts)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{Latency: 5 * time.Second})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := newClient(t, sim, nsx.Config{}).Tier1(cctx, t1Path)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("= %v", err)
		}
	})
	t.Run("request timeout", func(t *testing.T) {
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		sim.AddFault(nsxsim.FaultRule{Delay: 2 * time.Second, Count: 1})
		// The first attempt times out after 100 ms; the retry succeeds.
		c := newClient(t, sim, nsx.Config{Limits: nsx.Limits{RequestTimeout: 100 * time.Millisecond, RetryWaitMin: time.Millisecond}})
		if _, err := c.Tier1(ctx, t1Path); err != nil {
			t.Fatalf("= %v", err)
		}
	})
}

func TestRealized(t *testing.T) {
	// The simulator's clock is the test's: the route realizes when the
	// test moves the clock past the delay, not when a sleep guesses it has.
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	sim := nsxsim.StartTest(t, nsxsim.Options{RealizeDelay: 300 * time.Millisecond, Now: now})
	c := newClient(t, sim, nsx.Config{})
	ctx := context.Background()
	if err := c.Apply(ctx, t1Path, makeRoutes(1, "r"), nil); err != nil {
		t.Fatal(err)
	}
	path := t1Path.RoutePath("r-00000")
	st, err := c.Realized(ctx, path)
	if err != nil || st.State != nsx.StateUnrealized {
		t.Fatalf("just after apply: %+v, %v", st, err)
	}
	clock.Add(int64(299 * time.Millisecond))
	if st, err := c.Realized(ctx, path); err != nil || st.State != nsx.StateUnrealized {
		t.Fatalf("within the realization delay: %+v, %v", st, err)
	}
	clock.Add(int64(time.Millisecond))
	if st, err := c.Realized(ctx, path); err != nil || st.State != nsx.StateRealized {
		t.Fatalf("after the realization delay: %+v, %v", st, err)
	}
	if _, err := c.Realized(ctx, t1Path.RoutePath("absent")); !nsx.IsNotFound(err) {
		t.Fatalf("absent route: %v", err)
	}
}

func TestNewRejectsBadHost(t *testing.T) {
	for _, h := range []string{"", "nsx.example.com", "http://nsx.example.com", "https://"} {
		if _, err := nsx.New(nsx.Config{Host: h}); err == nil {
			t.Errorf("New(%q) accepted", h)
		}
	}
}

// TestHugeRetryAfterWaits: a Retry-After so large it overflowed to a
// negative wait (9 attempts in 27 ms) is obeyed up to MaxRetryAfter, and
// reported, clamped, in the error.
func TestHugeRetryAfterWaits(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 429, RetryAfter: 9223372037, Count: 3})
	lim := fastRetries
	lim.MaxRetryAfter = 40 * time.Millisecond
	c := newClient(t, sim, nsx.Config{Limits: lim})
	start := time.Now()
	if _, err := c.Tier1(context.Background(), t1Path); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 3*lim.MaxRetryAfter {
		t.Fatalf("3 answers asking to wait took %v in all; each wait should be MaxRetryAfter (%v)", waited, lim.MaxRetryAfter)
	}
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 429, RetryAfter: 9223372037})
	lim.MaxRetries = -1
	_, err := newClient(t, sim, nsx.Config{Limits: lim}).Tier1(context.Background(), t1Path)
	var e *nsx.APIError
	if !errors.As(err, &e) || e.RetryAfter != lim.MaxRetryAfter {
		t.Fatalf("= %v; want RetryAfter %v", err, lim.MaxRetryAfter)
	}
}
