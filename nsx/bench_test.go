package nsx_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// BenchmarkApply10000Routes applies 10,000 routes to a simulator with NSX's
// default limits (100 requests/s and 40 concurrent per client) and a latency
// model of 10 ms per call plus 20 µs per hierarchical child, two ways:
// batched through the hierarchical API, and one call per route as the vSphere
// cloud provider does (given t1route's transport, so that it survives the
// limits at all). The per-route run takes over 100 s at 10,000 routes; set
// T1ROUTE_BENCH_PER_ROUTE to a smaller count to shorten it.
func BenchmarkApply10000Routes(b *testing.B) {
	const n = 10000
	perRoute := n
	if v, err := strconv.Atoi(os.Getenv("T1ROUTE_BENCH_PER_ROUTE")); err == nil && v > 0 {
		perRoute = v
	}
	model := nsxsim.Options{Latency: 10 * time.Millisecond, LatencyPerChild: 20 * time.Microsecond}

	b.Run("batched", func(b *testing.B) {
		for range b.N {
			sim := nsxsim.StartTest(b, model)
			var calls atomic.Int64
			c := newClient(b, sim, nsx.Config{Observe: func(string, int, int, time.Duration) { calls.Add(1) }})
			routes := makeRoutes(n, "r")
			start := time.Now()
			if err := c.Apply(context.Background(), t1Path, routes, nil); err != nil {
				b.Fatal(err)
			}
			wall := time.Since(start)
			if got := len(sim.Routes("t1-routable")); got != n {
				b.Fatalf("%d routes applied, want %d", got, n)
			}
			st := sim.Stats()
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(calls.Load()), "calls")
			b.Logf("mode=batched routes=%d calls=%d wall=%.2fs nsx_429=%d", n, calls.Load(), wall.Seconds(), st.RateLimited)
		}
	})

	b.Run("one-call-per-route", func(b *testing.B) {
		for range b.N {
			sim := nsxsim.StartTest(b, model)
			var calls atomic.Int64
			// The client may use all of NSX's 100/s here: the fastest a per-route design can go.
			c := newClient(b, sim, nsx.Config{Limits: nsx.Limits{RateLimit: 100, MaxInFlight: 10}, Observe: func(string, int, int, time.Duration) { calls.Add(1) }})
			routes := makeRoutes(perRoute, "r")
			work := make(chan nsx.Route)
			var wg sync.WaitGroup
			var failed atomic.Int64
			start := time.Now()
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range work {
						if err := c.Apply(context.Background(), t1Path, []nsx.Route{r}, nil); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			for _, r := range routes {
				work <- r
			}
			close(work)
			wg.Wait()
			wall := time.Since(start)
			st := sim.Stats()
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(calls.Load()), "calls")
			b.Logf("mode=per-route routes=%d calls=%d wall=%.2fs failed=%d nsx_429=%d", perRoute, calls.Load(), wall.Seconds(), failed.Load(), st.RateLimited)
		}
	})
}
