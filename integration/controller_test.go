//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
)

const tier1 = "t1-routable"

var tier1Path = nsx.Tier1Path(tier1)

func TestMain(m *testing.M) {
	nsx.RouteSDKLogs(zap.NewNop())
	klog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// env is one cluster (real apiserver) and one NSX (nsxsim).
type env struct {
	t       *testing.T
	cluster *Cluster
	kube    kubernetes.Interface
	sim     *nsxsim.Simulator
	nsx     *nsx.Client
	id      podroute.Identity
}

func newEnv(t *testing.T, simOpts nsxsim.Options) *env {
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, simOpts)
	client := newSimClient(t, sim)
	uid, err := podroute.ClusterUID(context.Background(), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cluster: c, kube: c.Client, sim: sim, nsx: client, id: podroute.Identity{UID: uid, Name: "kubernetes"}}
}

// newSimClient is an NSX client of sim as an operator would configure it
// (session login, the simulator's CA pinned).
func newSimClient(t *testing.T, sim *nsxsim.Simulator) *nsx.Client {
	// Quick retries keep the outage test short; production backs off up to 30 s.
	_, client := Connect(t, SimSettings(sim, tier1), nil, connect.Options{
		Limits: nsx.Limits{RetryWaitMin: 50 * time.Millisecond, RetryWaitMax: time.Second, MaxRetries: 3}})
	return client
}

type runningController struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runningController) stop() { r.cancel(); <-r.done }

// startController runs the controller as `t1route controller` does.
func (e *env) startController(name string, leaderElect bool, resync time.Duration) *runningController {
	opts := podroute.RunOptions{Config: podroute.Config{Identity: e.id, Router: tier1Path,
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11"), netip.MustParsePrefix("fd00:100:96::/48")},
		ResyncPeriod: resync}, Log: zap.NewNop()}
	if leaderElect {
		opts.LeaderElection = &daemon.LeaderElection{Namespace: "kube-system", Name: "t1route-controller", Identity: name,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 300 * time.Millisecond}
	}
	return e.startControllerWith(name, opts)
}

// startAdoptingController runs the controller with cloud provider route
// adoption on.
func (e *env) startAdoptingController() *runningController {
	return e.startControllerWith("adopting", podroute.RunOptions{Config: podroute.Config{Identity: e.id, Router: tier1Path,
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}, AdoptCloudProviderRoutes: true}, Log: zap.NewNop()})
}

// startControllerWith runs the controller with opts until the test ends.
func (e *env) startControllerWith(name string, opts podroute.RunOptions) *runningController {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningController{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := podroute.Run(ctx, e.kube, e.nsx, opts); err != nil {
			e.t.Errorf("controller %s: %v", name, err)
		}
	}()
	e.t.Cleanup(r.stop)
	return r
}

func (e *env) createNode(name, podCIDR, ip string) {
	e.t.Helper()
	createNode(e.t, e.cluster, name, podCIDR, ip)
}

// addNodes creates nodes from to to-1 (node i: podCIDR(i) via nodeIP(i))
// and records the route each needs in want.
func (e *env) addNodes(want map[string]string, from, to int) {
	e.t.Helper()
	for i := from; i < to; i++ {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
		want[podCIDR(i)] = nodeIP(i)
	}
}

func createNode(t *testing.T, c *Cluster, name, podCIDR, ip string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	if _, err := c.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func nodeName(i int) string { return fmt.Sprintf("node-%03d", i) }
func podCIDR(i int) string  { return fmt.Sprintf("100.96.%d.0/24", i) }
func nodeIP(i int) string   { return fmt.Sprintf("198.51.100.%d", 10+i%240) }

// ours returns this cluster's routes on the Tier-1 by network.
func (e *env) ours() map[string]nsxsim.StaticRoute {
	out := map[string]nsxsim.StaticRoute{}
	for _, r := range e.sim.Routes(tier1) {
		for _, tag := range r.Tags {
			if tag.Scope == podroute.ScopeClusterUID && tag.Tag == e.id.UID {
				if _, dup := out[r.Network]; dup {
					e.t.Fatalf("two routes for %s", r.Network)
				}
				out[r.Network] = r
			}
		}
	}
	return out
}

// routesAre waits until this cluster's routes are exactly want (network -> next hop).
func (e *env) routesAre(timeout time.Duration, want map[string]string) {
	e.t.Helper()
	Eventually(e.t, timeout, fmt.Sprintf("%d routes", len(want)), func() (bool, string) {
		got := e.ours()
		if len(got) != len(want) {
			return false, fmt.Sprintf("%d routes", len(got))
		}
		for network, hop := range want {
			r, ok := got[network]
			if !ok || len(r.NextHops) != 1 || r.NextHops[0].IPAddress != hop {
				return false, fmt.Sprintf("route for %s: %+v", network, r.NextHops)
			}
		}
		return true, ""
	})
}

func TestControllerKeepsRoutesEqualToNodes(t *testing.T) {
	e := newEnv(t, nsxsim.Options{})
	ctx := context.Background()
	// Before t1route: a foreign route, and another cluster's (same name, other UID) route.
	e.sim.PutRoute(tier1, "default-via-edge", "0.0.0.0/0", []string{"203.0.113.1"})
	twin := podroute.Identity{UID: "99999999-0000-4000-8000-000000000099", Name: "kubernetes"}
	twinRoute := nsxsim.StaticRoute{}
	if err := e.nsx.Apply(ctx, tier1Path, []nsx.Route{{ID: twin.RouteID("100.96.250.0/24"), Network: "100.96.250.0/24",
		NextHops: []nsx.NextHop{{IP: "198.51.100.250"}}, Tags: []nsx.Tag{{Scope: podroute.ScopeManagedBy, Tag: podroute.ManagedByValue},
			{Scope: podroute.ScopeClusterUID, Tag: twin.UID}, {Scope: podroute.ScopeClusterName, Tag: twin.Name}}}}, nil); err != nil {
		t.Fatal(err)
	}
	twinRoute, _ = e.sim.Route(tier1, twin.RouteID("100.96.250.0/24"))
	untouched := func() {
		t.Helper()
		if r, ok := e.sim.Route(tier1, "default-via-edge"); !ok || r.Revision != 0 {
			t.Fatalf("the foreign route was changed or deleted: %+v %v", r, ok)
		}
		if r, ok := e.sim.Route(tier1, twinRoute.ID); !ok || r.Revision != twinRoute.Revision {
			t.Fatalf("the other cluster's route was changed or deleted: %+v %v", r, ok)
		}
	}

	want := map[string]string{}
	e.addNodes(want, 0, 200)
	e.sim.ResetStats()
	e.startController("only", false, 3*time.Second)
	e.routesAre(30*time.Second, want)
	if calls := e.sim.Stats().HierarchicalCalls; calls > 2 {
		t.Errorf("200 new nodes took %d hierarchical calls; batching should need 1", calls)
	}
	for _, r := range e.ours() {
		tags := map[string]string{}
		for _, tg := range r.Tags {
			tags[tg.Scope] = tg.Tag
		}
		if tags[podroute.ScopeManagedBy] != "t1route" || tags[podroute.ScopeClusterName] != "kubernetes" || tags[podroute.ScopeNode] == "" {
			t.Fatalf("route %s tags %v", r.ID, tags)
		}
	}
	untouched()

	// Conditions: NetworkUnavailable=False/RouteCreated on every node.
	Eventually(t, 30*time.Second, "NetworkUnavailable=False on all nodes", func() (bool, string) {
		nodes, _ := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		for _, n := range nodes.Items {
			if c := condition(n); c == nil || c.Status != corev1.ConditionFalse || c.Reason != podroute.ReasonRouteCreated {
				return false, fmt.Sprintf("%s: %+v", n.Name, c)
			}
		}
		return true, ""
	})

	// A node's address changes: the next hop follows.
	n, _ := e.kube.CoreV1().Nodes().Get(ctx, nodeName(7), metav1.GetOptions{})
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "203.0.113.77"}}
	if _, err := e.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want[podCIDR(7)] = "203.0.113.77"
	e.routesAre(10*time.Second, want)

	// Nodes deleted: their routes go.
	for i := 150; i < 200; i++ {
		e.kube.CoreV1().Nodes().Delete(ctx, nodeName(i), metav1.DeleteOptions{})
		delete(want, podCIDR(i))
	}
	e.routesAre(10*time.Second, want)

	// Out-of-band changes in NSX are repaired at the next resync.
	e.sim.DeleteRoute(tier1, e.id.RouteID(podCIDR(3)))
	e.sim.PutRoute(tier1, e.id.RouteID(podCIDR(4)), podCIDR(4), []string{"198.51.100.254"}, e.ours()[podCIDR(4)].Tags...)
	e.routesAre(10*time.Second, want)

	// Dual-stack: both routes; an odd node: no route, a Warning event, condition True.
	dual := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dual"}, Spec: corev1.NodeSpec{PodCIDR: "100.96.201.0/24", PodCIDRs: []string{"100.96.201.0/24", "fd00:100:96:c9::/64"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.201"}, {Type: corev1.NodeInternalIP, Address: "2001:db8::c9"}}}}
	if _, err := e.kube.CoreV1().Nodes().Create(ctx, dual, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createNode("outsider", "10.20.0.0/24", "198.51.100.202")
	want["100.96.201.0/24"], want["fd00:100:96:c9::/64"] = "198.51.100.201", "2001:db8::c9"
	e.routesAre(10*time.Second, want)
	Eventually(t, 10*time.Second, "a Warning event on the outsider node", func() (bool, string) {
		evs, _ := e.kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=outsider"})
		for _, ev := range evs.Items {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == podroute.ReasonOutsideCluster {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})
	Eventually(t, 10*time.Second, "NetworkUnavailable=True on the outsider node", func() (bool, string) {
		n, _ := e.kube.CoreV1().Nodes().Get(ctx, "outsider", metav1.GetOptions{})
		c := condition(*n)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == podroute.ReasonNoRouteCreated, fmt.Sprintf("%+v", c)
	})
	untouched()

	// Steady state writes nothing.
	time.Sleep(500 * time.Millisecond)
	e.sim.ResetStats()
	time.Sleep(7 * time.Second) // two resyncs
	if st := e.sim.Stats(); st.RoutesWritten != 0 || st.ByMethod["GET"] == 0 {
		t.Fatalf("steady state: %d routes written, %d GETs", st.RoutesWritten, st.ByMethod["GET"])
	}
}

func condition(n corev1.Node) *corev1.NodeCondition {
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func TestControllerConvergesAfterNSXOutage(t *testing.T) {
	e := newEnv(t, nsxsim.Options{})
	want := map[string]string{}
	e.addNodes(want, 0, 20)
	e.startController("only", false, time.Minute)
	e.routesAre(20*time.Second, want)
	// NSX answers 503 to everything for 20 s while nodes come and go.
	e.sim.AddFault(nsxsim.FaultRule{Status: 503})
	outageEnds := time.Now().Add(20 * time.Second)
	e.addNodes(want, 20, 40)
	for i := range 5 {
		e.kube.CoreV1().Nodes().Delete(context.Background(), nodeName(i), metav1.DeleteOptions{})
		delete(want, podCIDR(i))
	}
	time.Sleep(time.Until(outageEnds))
	if e.sim.Stats().Faults["503"] == 0 {
		t.Fatal("the outage was never noticed")
	}
	e.sim.ClearFaults()
	recovered := time.Now()
	e.routesAre(60*time.Second, want)
	t.Logf("converged %v after NSX came back", time.Since(recovered).Round(100*time.Millisecond))
}

func TestLeaderFailoverMidBatch(t *testing.T) {
	// 20 ms per route: a batch of 300 takes 6 s, long enough to kill the leader inside it.
	e := newEnv(t, nsxsim.Options{LatencyPerChild: 20 * time.Millisecond, RateLimit: -1})
	want := map[string]string{}
	for i := range 300 {
		name := fmt.Sprintf("node-%03d", i)
		cidr := fmt.Sprintf("100.%d.%d.0/24", 96+i/256, i%256)
		e.createNode(name, cidr, nodeIP(i))
		want[cidr] = nodeIP(i)
	}
	a := e.startController("replica-a", true, time.Minute)
	// replica-a leads before replica-b starts: wait for its Lease, not a while.
	Eventually(t, 20*time.Second, "replica-a to hold the Lease", func() (bool, string) {
		l, err := e.kube.CoordinationV1().Leases("kube-system").Get(context.Background(), "t1route-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, fmt.Sprint(err)
		}
		return *l.Spec.HolderIdentity == "replica-a", *l.Spec.HolderIdentity
	})
	b := e.startController("replica-b", true, time.Minute)
	_ = b
	// Wait until the leader's first batch is in flight, then kill it.
	Eventually(t, 20*time.Second, "the first batch in flight", func() (bool, string) {
		return e.sim.Stats().ByMethod["PATCH"] > 0, ""
	})
	var leader string
	lease, err := e.kube.CoordinationV1().Leases("kube-system").Get(context.Background(), "t1route-controller", metav1.GetOptions{})
	if err == nil && lease.Spec.HolderIdentity != nil {
		leader = *lease.Spec.HolderIdentity
	}
	if leader != "replica-a" {
		t.Fatalf("leader is %q, want replica-a (started first)", leader)
	}
	killed := time.Now()
	a.stop()
	var once sync.Once
	Eventually(t, 30*time.Second, "replica-b to lead", func() (bool, string) {
		l, err := e.kube.CoordinationV1().Leases("kube-system").Get(context.Background(), "t1route-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, fmt.Sprint(err)
		}
		if *l.Spec.HolderIdentity == "replica-b" {
			once.Do(func() {
				t.Logf("replica-b leads %v after replica-a was killed", time.Since(killed).Round(100*time.Millisecond))
			})
			return true, ""
		}
		return false, *l.Spec.HolderIdentity
	})
	if n := len(e.ours()); n >= 300 {
		t.Fatalf("all %d routes were there when the leader was killed: not mid-batch", n)
	}
	e.routesAre(60*time.Second, want) // exactly 300: none lost, none duplicated
	t.Logf("converged %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}
