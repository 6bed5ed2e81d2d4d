//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
)

// soakDuration is T1ROUTE_SOAK_DURATION (make soak: 5m), 30 s by default.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("T1ROUTE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("T1ROUTE_SOAK_DURATION=%q: %v", v, err)
		}
		return d
	}
	return 30 * time.Second
}

var soakCIDRs = []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}

// TestFaultSoak checks t1route's promises under sustained faults:
// 1. it converges: every desired route ends up on the Tier-1 with the right next hop;
// 2. it owns only what it tagged: no foreign or other-cluster route is changed or deleted;
// 3. it loses nothing: no route dropped, duplicated or left stale by retries, restarts, leader changes or faults.
func TestFaultSoak(t *testing.T) {
	dur := soakDuration(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{
		RefreshTokens: map[string]string{"vmc-api-token": "vmc-user"}, TokenLifetime: 4 * time.Second,
	})
	ctx := context.Background()
	uid, err := podroute.ClusterUID(ctx, c.Client)
	if err != nil {
		t.Fatal(err)
	}
	id := podroute.Identity{UID: uid, Name: "kubernetes"}

	// Routes that are not this cluster's: an operator's, and another cluster's of the same name.
	twin := podroute.Identity{UID: "99999999-0000-4000-8000-000000000099", Name: "kubernetes"}
	for i := range 3 {
		sim.PutRoute(tier1, fmt.Sprintf("operator-%d", i), fmt.Sprintf("10.%d.0.0/16", i), []string{"203.0.113.1"})
		sim.PutRoute(tier1, twin.RouteID(fmt.Sprintf("100.127.%d.0/24", i)), fmt.Sprintf("100.127.%d.0/24", i), []string{"203.0.113.2"},
			nsxsim.Tag{Scope: podroute.ScopeManagedBy, Tag: podroute.ManagedByValue}, nsxsim.Tag{Scope: podroute.ScopeClusterUID, Tag: twin.UID})
	}
	foreign := map[string]int64{}
	for _, r := range sim.Routes(tier1) {
		foreign[r.ID] = r.Revision
	}

	// NSX clients of the replicas, counting attempts beyond the first (retries).
	var retries, calls atomic.Int64
	observe := func(_ string, _, attempts int, _ time.Duration) {
		calls.Add(1)
		retries.Add(int64(max(0, attempts-1)))
	}
	limits := nsx.Limits{RequestTimeout: 2 * time.Second, RetryWaitMin: 50 * time.Millisecond, RetryWaitMax: time.Second, MaxRetries: 4}
	newClient := func(vmc bool) *nsx.Client {
		settings := SimSettings(sim, tier1) // a session as the simulator's user
		if vmc {
			delete(settings, "NSXT_USERNAME")
			delete(settings, "NSXT_PASSWORD")
			settings["NSXT_VMC_AUTH_HOST"], settings["NSXT_VMC_ACCESS_TOKEN"] = sim.Addr(), "vmc-api-token"
		}
		_, client := Connect(t, settings, nil, connect.Options{Limits: limits, Observe: observe})
		return client
	}
	type replica struct {
		name   string
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(name string, vmc bool) *replica {
		rctx, cancel := context.WithCancel(ctx)
		r := &replica{name: name, cancel: cancel, done: make(chan struct{})}
		cl := newClient(vmc)
		go func() {
			defer close(r.done)
			podroute.Run(rctx, c.Client, cl, podroute.RunOptions{Log: zap.NewNop(),
				Config: podroute.Config{Identity: id, Router: tier1Path, ClusterCIDRs: soakCIDRs, ResyncPeriod: 3 * time.Second},
				LeaderElection: &daemon.LeaderElection{Namespace: "kube-system", Name: "t1route-controller", Identity: name,
					LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 300 * time.Millisecond}})
		}()
		return r
	}
	var mu sync.Mutex
	began := time.Now()
	replicas := map[string]*replica{}
	for _, r := range []*replica{start("a-session", false), start("b-vmc", true)} {
		replicas[r.name] = r
	}
	defer func() {
		for _, r := range replicas {
			r.cancel()
			<-r.done
		}
	}()
	leader := func() string {
		l, err := c.Client.CoordinationV1().Leases("kube-system").Get(ctx, "t1route-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	killLeaderAndRestart := func(newName string, vmc bool) {
		mu.Lock()
		defer mu.Unlock()
		if r, ok := replicas[leader()]; ok {
			r.cancel()
			<-r.done
			delete(replicas, r.name)
			t.Logf("killed leader %s at %v (NSX: %d logins, %d token exchanges so far)", r.name, time.Since(began).Round(time.Second), sim.Stats().Logins, sim.Stats().TokenExchanges)
		}
		replicas[newName] = start(newName, vmc)
	}

	// Faults on a share of all calls, from the start.
	for _, f := range []nsxsim.FaultRule{
		{Status: 429, Probability: 0.05},
		{Status: 503, Probability: 0.04},
		{Status: 500, Probability: 0.02},
		{Reset: true, Probability: 0.02},
		{Delay: 3 * time.Second, Probability: 0.01},        // longer than the 2 s request timeout
		{Delay: 300 * time.Millisecond, Probability: 0.05}, // a latency spike, then the call proceeds
	} {
		sim.AddFault(f)
	}
	// And each kind once for certain: a 30 s soak makes ~160 calls, so a 2 %
	// rule never fires in about one run of 25 (0.98^160), and the check below
	// that every kind fired would fail by chance. Rules are tried in order, so
	// these fire on the first calls the probabilistic ones leave alone.
	for _, f := range []nsxsim.FaultRule{
		{Status: 429, Count: 1}, {Status: 503, Count: 1}, {Status: 500, Count: 1}, {Reset: true, Count: 1},
		{Delay: 300 * time.Millisecond, Count: 1},
	} {
		sim.AddFault(f)
	}

	// Node churn throughout: add, delete, readdress.
	rng := rand.New(rand.NewPCG(1, 2))
	var ops atomic.Int64
	next := 0
	live := map[int]bool{}
	addNode := func() {
		i := next
		next++
		createNode(t, c, fmt.Sprintf("soak-%04d", i), fmt.Sprintf("100.%d.%d.0/24", 96+i/256, i%256), nodeIP(i))
		live[i] = true
	}
	for range 100 {
		addNode()
	}
	pick := func() (int, bool) {
		for i := range live {
			return i, true
		}
		return 0, false
	}
	outageAt, outageLen := dur*2/5, min(20*time.Second, dur/5)
	began = time.Now()
	var lastFault time.Time
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	phase := 0
	for now := range tick.C {
		el := now.Sub(began)
		if el >= dur {
			break
		}
		switch op := rng.IntN(10); {
		case op < 4:
			addNode()
		case op < 6:
			if i, ok := pick(); ok {
				c.Client.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("soak-%04d", i), metav1.DeleteOptions{})
				delete(live, i)
			}
		case op < 8:
			if i, ok := pick(); ok {
				n, err := c.Client.CoreV1().Nodes().Get(ctx, fmt.Sprintf("soak-%04d", i), metav1.GetOptions{})
				if err == nil {
					n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("203.0.113.%d", rng.IntN(250)+1)}}
					c.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
				}
			}
		default:
			// A concurrent writer bumps the _revision of one of this cluster's
			// routes (never a foreign one: those must stay exactly as they were).
			var ours []string
			for _, r := range sim.Routes(tier1) {
				if _, isForeign := foreign[r.ID]; !isForeign {
					ours = append(ours, r.ID)
				}
			}
			if len(ours) > 0 {
				sim.TouchRoute(tier1, ours[rng.IntN(len(ours))])
			}
		}
		ops.Add(1)
		if int(el/time.Second)%5 == 4 && int((el-100*time.Millisecond)/time.Second)%5 == 3 {
			sim.ExpireSessions()
		}
		switch {
		case phase == 0 && el >= outageAt:
			sim.AddFault(nsxsim.FaultRule{Status: 503}) // outage: everything fails
			t.Logf("NSX outage for %v", outageLen)
			phase = 1
		case phase == 1 && el >= outageAt+outageLen:
			sim.ClearFaults()
			sim.AddFault(nsxsim.FaultRule{Status: 429, Probability: 0.05})
			sim.AddFault(nsxsim.FaultRule{Reset: true, Probability: 0.02})
			phase = 2
		case phase == 2 && el >= dur*3/5:
			killLeaderAndRestart("c-session", false) // the leader, killed with two replicas running
			phase = 3
		case phase == 3 && el >= dur*4/5:
			killLeaderAndRestart("d-vmc", true) // and again, while batches are in flight
			sim.ExpireTokens()
			phase = 4
		}
	}
	lastFault = time.Now()
	sim.ClearFaults()
	faults := sim.Stats().Faults

	// Promise 1: converge — every desired route, right next hop; none extra.
	desired := func() map[string]string {
		nodes, _ := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		var ns []podroute.Node
		for i := range nodes.Items {
			ns = append(ns, podroute.FromNode(&nodes.Items[i]))
		}
		d, _ := podroute.Desired(id, soakCIDRs, ns)
		out := map[string]string{}
		for _, r := range d {
			out[r.Network] = r.NextHops[0].IP
		}
		return out
	}
	var lost, duplicated, stale int
	check := func() bool {
		want := desired()
		got := map[string][]string{}
		for _, r := range sim.Routes(tier1) {
			for _, tg := range r.Tags {
				if tg.Scope == podroute.ScopeClusterUID && tg.Tag == uid {
					got[r.Network] = append(got[r.Network], r.NextHops[0].IPAddress)
				}
			}
		}
		lost, duplicated, stale = 0, 0, 0
		for network, hop := range want {
			if hops := got[network]; len(hops) == 0 || hops[0] != hop {
				lost++
			}
		}
		for network, hops := range got {
			duplicated += len(hops) - 1
			if _, ok := want[network]; !ok {
				stale++
			}
		}
		return lost == 0 && duplicated == 0 && stale == 0
	}
	converged := false
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if converged = check(); converged {
			break
		}
	}
	convergeAfter := time.Since(lastFault)

	// Promise 2: foreign and other-cluster routes untouched.
	touched := 0
	for rid, rev := range foreign {
		if r, ok := sim.Route(tier1, rid); !ok || r.Revision != rev {
			touched++
		}
	}
	var kinds []string
	for k, v := range faults {
		kinds = append(kinds, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(kinds)
	st := sim.Stats()
	summary := fmt.Sprintf("soak: duration=%v node_operations=%d nodes_live=%d nsx_calls=%d retries=%d faults=[%s] session_logins=%d token_exchanges=%d converge_after_last_fault=%.1fs lost=%d duplicated=%d stale=%d foreign_touched=%d",
		dur, ops.Load(), len(live), calls.Load(), retries.Load(), strings.Join(kinds, " "), st.Logins, st.TokenExchanges, convergeAfter.Seconds(), lost, duplicated, stale, touched)
	fmt.Println(summary)
	t.Log(summary)
	if !converged || touched != 0 {
		t.Fatalf("promises broken: converged=%t %s", converged, summary)
	}
	if st.Logins < 2 || st.TokenExchanges < 2 {
		t.Fatalf("both ways to authenticate must have worked, through expiries: %d logins, %d token exchanges", st.Logins, st.TokenExchanges)
	}
	if faults["503"] == 0 || faults["429"] == 0 || faults["reset"] == 0 || faults["delay"] == 0 || faults["500"] == 0 {
		t.Fatalf("some fault kinds never fired: %v", faults)
	}
}
