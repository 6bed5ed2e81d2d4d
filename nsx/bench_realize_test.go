package nsx_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// BenchmarkRealizeRoutes reads the realization of 10,000 routes under NSX's
// default limits and a latency model of 10 ms a call, two ways: from the
// Tier-1's forwarding table (RealizeRoutes), and one realized-state call per
// route (what check did before; T1ROUTE_BENCH_PER_ROUTE routes, default
// 1,000, as 10,000 take over 200 s at the client's 50 requests/s). Calls are
// counted at the simulator.
func BenchmarkRealizeRoutes(b *testing.B) {
	const n = 10000
	perRoute := 1000
	if v, err := strconv.Atoi(os.Getenv("T1ROUTE_BENCH_PER_ROUTE")); err == nil && v > 0 {
		perRoute = v
	}
	sim := nsxsim.StartTest(b, nsxsim.Options{Latency: 10 * time.Millisecond})
	c := newClient(b, sim, nsx.Config{})
	ctx := context.Background()
	if err := c.Apply(ctx, t1Path, makeRoutes(n, "r"), nil); err != nil {
		b.Fatal(err)
	}
	routes, err := c.ListRoutes(ctx, t1Path)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("forwarding-table", func(b *testing.B) {
		for range b.N {
			sim.ResetStats()
			start := time.Now()
			states, err := c.RealizeRoutes(ctx, t1Path, routes)
			if err != nil {
				b.Fatal(err)
			}
			wall := time.Since(start)
			realized := 0
			for _, st := range states {
				if st.State == nsx.StateRealized {
					realized++
				}
			}
			calls := sim.Stats().Requests
			b.ReportMetric(float64(calls), "calls")
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.Logf("mode=forwarding-table routes=%d calls=%d realized=%d wall=%.2fs", n, calls, realized, wall.Seconds())
		}
	})

	b.Run("one-call-per-route", func(b *testing.B) {
		for range b.N {
			sim.ResetStats()
			start := time.Now()
			realized := 0
			for _, r := range routes[:perRoute] {
				st, err := c.Realized(ctx, r.Path)
				if err != nil {
					b.Fatal(err)
				}
				if st.State == nsx.StateRealized {
					realized++
				}
			}
			wall := time.Since(start)
			calls := sim.Stats().Requests
			b.ReportMetric(float64(calls), "calls")
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.Logf("mode=per-route routes=%d calls=%d realized=%d wall=%.2fs", perRoute, calls, realized, wall.Seconds())
		}
	})
}
