package nsx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	nsxpolicy "github.com/vmware/vsphere-automation-sdk-go/services/nsxt"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra/tier_1s"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// The client's own cost on the hot path, per route, two ways: through the
// SDK's generic bindings (how the client worked until it encoded these
// bodies itself; kept here as the reference) and as the client works now.
// Each prints a line "<call> cost (<way>): alloc_per_route=… time_per_route=…
// peak_heap_inuse=…". Against loopback servers that answer at once, so the
// figures are the client's (and a little of the server's reading).

const costRoutes = 10000

var costTier1 = MustRouterPath("/infra/tier-1s/t1-routable")

// BenchmarkApplyCost applies 10,000 routes as the controller writes them
// (10 hierarchical calls of 1,000).
func BenchmarkApplyCost(b *testing.B) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // a sink
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}")) //nolint:errcheck // a sink
	}))
	b.Cleanup(srv.Close)
	c := costClient(b, srv, nil)
	routes := controllerRoutes(costRoutes)
	ctx := context.Background()
	ways := []struct {
		name  string
		apply func() error
	}{
		{"SDK bindings", func() error {
			for i := 0; i < len(routes); i += c.batchSize {
				root := sdkModel(b, "t1-routable", routes[i:min(i+c.batchSize, len(routes))], nil)
				err := c.call(ctx, "apply static routes", "PATCH", "/policy/api/v1/infra", func(conn vapiclient.Connector) error {
					return nsxpolicy.NewInfraClient(conn).Patch(root, nil)
				})
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"own encoding", func() error { return c.Apply(ctx, costTier1, routes, nil) }},
	}
	if err := c.Apply(ctx, costTier1, routes[:10], nil); err != nil { // warm up connections
		b.Fatal(err)
	}
	for range b.N {
		for _, w := range ways {
			measureCost(b, "apply", w.name, w.apply)
		}
	}
}

// BenchmarkReadCost reads 10,000 routes back: ListRoutes (10 pages) and
// ForwardingTable (what check reads for realization), from a server
// replaying nsxsim's answers.
func BenchmarkReadCost(b *testing.B) {
	sim := nsxsim.StartTest(b, nsxsim.Options{RateLimit: -1, ClientConcurrency: -1, GlobalConcurrency: -1})
	user, pass := sim.User()
	seed, err := New(Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}, Auth: basicAuth{user, pass}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := seed.Apply(ctx, costTier1, controllerRoutes(costRoutes), nil); err != nil {
		b.Fatal(err)
	}
	c := costClient(b, replayServer(b, sim), nil)
	type read struct {
		call, way string
		read      func() (int, error)
	}
	reads := []read{
		{"list", "SDK bindings", func() (int, error) { r, err := listWithSDKClient(ctx, c, costTier1.String()); return len(r), err }},
		{"list", "own decoding", func() (int, error) { r, err := c.ListRoutes(ctx, costTier1); return len(r), err }},
		{"forwarding table", "SDK bindings", func() (int, error) { e, err := forwardingWithSDKClient(ctx, c, costTier1.String()); return len(e), err }},
		{"forwarding table", "own decoding", func() (int, error) { e, err := c.ForwardingTable(ctx, costTier1); return len(e), err }},
	}
	for _, rd := range reads {
		if got, err := rd.read(); err != nil || got != costRoutes { // also records the answers
			b.Fatalf("%s (%s): %d entries, %v", rd.call, rd.way, got, err)
		}
	}
	for range b.N {
		for _, rd := range reads {
			measureCost(b, rd.call, rd.way, func() error { _, err := rd.read(); return err })
		}
	}
}

// measureCost runs fn once and prints its time, allocation and peak heap per route.
func measureCost(b *testing.B, call, way string, fn func() error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap()
	start := time.Now()
	if err := fn(); err != nil {
		b.Fatalf("%s (%s): %v", call, way, err)
	}
	wall := time.Since(start)
	heapPeak := peak()
	runtime.ReadMemStats(&after)
	fmt.Printf("%s cost (%s): routes=%d alloc_per_route=%dB time_per_route=%.1fµs peak_heap_inuse=%dMB\n", call, way, costRoutes,
		(after.TotalAlloc-before.TotalAlloc)/costRoutes, float64(wall.Nanoseconds())/1e3/costRoutes, heapPeak>>20)
}

// sampleHeap samples HeapInuse every millisecond until the returned
// function is called, which returns the largest value seen.
func sampleHeap() func() uint64 {
	stop, res := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-res }
}

// costClient is a client of srv with the default limits.
func costClient(b *testing.B, srv *httptest.Server, authn Authenticator) *Client {
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := New(Config{Host: srv.URL, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Auth: authn})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// basicAuth sends HTTP basic credentials (package auth, which has the real
// ones, imports this package).
type basicAuth struct{ user, pass string }

func (a basicAuth) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.SetBasicAuth(a.user, a.pass)
		return next.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// controllerRoutes are n routes as the route controller writes them: a
// display name, one next hop and the four ownership tags.
func controllerRoutes(n int) []Route {
	out := make([]Route, n)
	for i := range out {
		node := fmt.Sprintf("node-%06d", i)
		cidr := fmt.Sprintf("100.%d.%d.%d/27", 64+i>>11, (i>>3)&255, (i&7)<<5)
		out[i] = Route{
			ID:          "t1route-00000000-0000-4000-8000-0000000bench-" + node,
			DisplayName: "bench/" + node + "/" + cidr,
			Network:     cidr,
			NextHops:    []NextHop{{IP: fmt.Sprintf("100.96.%d.%d", i>>8, i&255)}},
			Tags: []Tag{{Scope: "t1route/managed-by", Tag: "t1route"}, {Scope: "t1route/cluster-uid", Tag: "00000000-0000-4000-8000-0000000bench"},
				{Scope: "t1route/cluster", Tag: "bench"}, {Scope: "t1route/node", Tag: node}},
		}
	}
	return out
}

// replayServer answers each request (by method, path and query) with what
// sim answered the first time, so that a measurement counts the client alone.
func replayServer(b *testing.B, sim *nsxsim.Simulator) *httptest.Server {
	user, pass := sim.User()
	direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}}}
	var mu sync.Mutex
	recorded := map[string][]byte{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // not needed
		key := r.Method + " " + r.URL.RequestURI()
		mu.Lock()
		body, ok := recorded[key]
		mu.Unlock()
		if !ok {
			req, _ := http.NewRequest(r.Method, sim.URL()+r.URL.RequestURI(), nil)
			req.SetBasicAuth(user, pass)
			resp, err := direct.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				http.Error(w, string(body), resp.StatusCode)
				return
			}
			mu.Lock()
			recorded[key] = body
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body) //nolint:errcheck // a test server
	}))
	b.Cleanup(srv.Close)
	return srv
}

// listWithSDKClient is ListRoutes as the client made it through the SDK.
func listWithSDKClient(ctx context.Context, c *Client, tier1Path string) ([]Route, error) {
	id, _ := Tier1ID(tier1Path)
	var out []Route
	var cursor *string
	for {
		var res model.StaticRoutesListResult
		err := c.call(ctx, "list static routes", "GET", "/policy/api/v1"+tier1Path+"/static-routes", func(conn vapiclient.Connector) error {
			var err error
			res, err = tier_1s.NewStaticRoutesClient(conn).List(id, cursor, nil, nil, &c.pageSize, nil, nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range res.Results {
			out = append(out, fromModel(r))
		}
		if res.Cursor == nil || *res.Cursor == "" {
			return out, nil
		}
		cursor = res.Cursor
	}
}

// forwardingWithSDKClient is ForwardingTable as the client read it through the SDK.
func forwardingWithSDKClient(ctx context.Context, c *Client, tier1Path string) ([]ForwardingEntry, error) {
	id, _ := Tier1ID(tier1Path)
	var out []ForwardingEntry
	var cursor *string
	source := tier_1s.ForwardingTable_LIST_ROUTE_SOURCE_STATIC
	for {
		var res model.RoutingTableListResult
		err := c.call(ctx, "get forwarding table", "GET", "/policy/api/v1"+tier1Path+"/forwarding-table", func(conn vapiclient.Connector) error {
			var err error
			res, err = tier_1s.NewForwardingTableClient(conn).List(id, nil, cursor, nil, nil, nil, nil, nil, &c.pageSize, &source, nil, nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range res.Results {
			for _, e := range t.RouteEntries {
				out = append(out, ForwardingEntry{Network: deref(e.Network), NextHop: deref(e.NextHop), RouteType: deref(e.RouteType), EdgeNode: deref(t.EdgeNode)})
			}
		}
		if res.Cursor == nil || *res.Cursor == "" {
			return out, nil
		}
		cursor = res.Cursor
	}
}
