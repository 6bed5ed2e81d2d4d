//go:build integration

// Command demo shows t1route's main job on an embedded default: a simulated
// NSX Manager, a real kube-apiserver and etcd, and the route controller.
// Run it with `make demo`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
)

// runner is a TB for a program: fatal errors clean up and exit.
type runner struct {
	cleanups []func()
	failed   bool
}

func (r *runner) Helper()                 {}
func (r *runner) Logf(f string, a ...any) { fmt.Printf("  "+f+"\n", a...) }
func (r *runner) Cleanup(f func())        { r.cleanups = append(r.cleanups, f) }
func (r *runner) Failed() bool            { return r.failed }
func (r *runner) Fatal(a ...any)          { r.Fatalf("%s", fmt.Sprint(a...)) }
func (r *runner) Fatalf(f string, a ...any) {
	r.failed = true
	fmt.Fprintf(os.Stderr, "demo failed: "+f+"\n", a...)
	r.done()
	os.Exit(1)
}
func (r *runner) TempDir() string {
	d, err := os.MkdirTemp("", "t1route-demo-")
	if err != nil {
		r.Fatal(err)
	}
	r.Cleanup(func() { os.RemoveAll(d) })
	return d
}
func (r *runner) done() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func main() {
	r := &runner{}
	defer r.done()
	klog.SetLogger(logr.Discard())
	nsx.RouteSDKLogs(zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	step("starting a simulated NSX Manager (nsxsim) with Tier-1 t1-routable")
	sim, err := nsxsim.New(nsxsim.Options{})
	if err != nil {
		r.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		r.Fatal(err)
	}
	r.Cleanup(func() { sim.Close() })
	fmt.Printf("  NSX API on %s\n", sim.URL())
	sim.PutRoute("t1-routable", "edge-default", "0.0.0.0/0", []string{"203.0.113.1"}) // an operator's route
	fmt.Println("  an operator's own route 0.0.0.0/0 via 203.0.113.1 is already there (t1route must never touch it)")

	step("starting a real kube-apiserver and etcd (v1.35.4)")
	cluster := integration.StartCluster(r)
	fmt.Printf("  API server at %s\n", cluster.Config.Host)

	step("starting the route controller (CLUSTER_CIDR=100.96.0.0/11, CLUSTER_NAME=demo)")
	// The operator's settings, for the controller here and the t1route commands below.
	settings := integration.SimSettings(sim, "t1-routable")
	settings["NSXT_POD_ROUTING_ENABLED"], settings["CLUSTER_CIDR"], settings["CLUSTER_NAME"] = "true", "100.96.0.0/11", "demo"
	cfg, client := integration.Connect(r, settings, cluster.Client, connect.Options{})
	uid, err := podroute.ClusterUID(ctx, cluster.Client)
	if err != nil {
		r.Fatal(err)
	}
	id := podroute.Identity{UID: uid, Name: cfg.ClusterName}
	go podroute.Run(ctx, cluster.Client, client, podroute.RunOptions{Config: podroute.Config{Identity: id,
		Router: cfg.RouterPath, ClusterCIDRs: cfg.ClusterCIDRs, ResyncPeriod: 2 * time.Second}, Log: zap.NewNop()})
	fmt.Printf("  cluster identity: kube-system UID %s\n", uid)

	step("creating 3 nodes with podCIDRs")
	for i := 1; i <= 3; i++ {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("worker-%d", i)},
			Spec:   corev1.NodeSpec{PodCIDR: fmt.Sprintf("100.96.%d.0/24", i), PodCIDRs: []string{fmt.Sprintf("100.96.%d.0/24", i)}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.51.100.%d", 10+i)}}}}
		if _, err := cluster.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			r.Fatal(err)
		}
		fmt.Printf("  %s  podCIDR %s  InternalIP %s\n", n.Name, n.Spec.PodCIDR, n.Status.Addresses[0].Address)
	}
	waitRoutes(r, sim, 4)
	showRoutes(sim)
	showConditions(ctx, r, cluster)

	step("worker-2's address changes to 198.51.100.99: its route's next hop follows")
	n, _ := cluster.Client.CoreV1().Nodes().Get(ctx, "worker-2", metav1.GetOptions{})
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.99"}}
	cluster.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	integration.Eventually(r, 30*time.Second, "next hop 198.51.100.99", func() (bool, string) {
		return strings.Contains(routeTable(sim), "198.51.100.99"), routeTable(sim)
	})
	showRoutes(sim)

	step("worker-3 is deleted: its route is garbage-collected")
	cluster.Client.CoreV1().Nodes().Delete(ctx, "worker-3", metav1.DeleteOptions{})
	waitRoutes(r, sim, 3)
	showRoutes(sim)

	step("someone deletes worker-1's route in the NSX UI: the next resync restores it")
	sim.DeleteRoute("t1-routable", id.RouteID("100.96.1.0/24"))
	fmt.Println("  (deleted out of band)")
	waitRoutes(r, sim, 3)
	showRoutes(sim)

	step("t1route check: every node's route is on the Tier-1, points at the node, and is realized")
	bin := integration.BuildBinaries(r)
	env := integration.Environ(settings)
	run(r, bin, env, true, "check", "--kubeconfig", cluster.Kubeconfig)

	step("a deleted cluster left routes behind: t1route gc removes them (dry run, then --yes)")
	for i := 1; i <= 2; i++ {
		network := fmt.Sprintf("100.98.%d.0/24", i)
		old := podroute.Identity{UID: "0d1c1a55-0000-4000-8000-000000000001", Name: "old-cluster"}
		sim.PutRoute("t1-routable", old.RouteID(network), network, []string{fmt.Sprintf("198.51.100.%d", 50+i)},
			nsxsim.Tag{Scope: podroute.ScopeManagedBy, Tag: podroute.ManagedByValue}, nsxsim.Tag{Scope: podroute.ScopeClusterUID, Tag: old.UID},
			nsxsim.Tag{Scope: podroute.ScopeClusterName, Tag: old.Name}, nsxsim.Tag{Scope: podroute.ScopeNode, Tag: fmt.Sprintf("old-worker-%d", i)})
	}
	showRoutes(sim)
	run(r, bin, env, true, "gc", "--cluster", "old-cluster")
	run(r, bin, env, true, "gc", "--cluster", "old-cluster", "--yes")
	showRoutes(sim)

	st := sim.Stats()
	step("done: %d NSX requests in all, %d hierarchical PATCH calls; the operator's route was never touched", st.Requests, st.HierarchicalCalls)
	if os.Geteuid() == 0 {
		fmt.Println("  next (as root): the packet-level demo with OVS, pods, ping and curl (make e2e)")
	} else {
		fmt.Println("  as root, make demo also runs the packet-level demo with OVS, pods, ping and curl (make e2e)")
	}
}

// run runs the t1route binary and shows its output indented.
func run(r *runner, bin string, env []string, mustPass bool, args ...string) {
	fmt.Printf("  $ t1route %s\n", strings.Join(args, " "))
	cmd := exec.Command(filepath.Join(bin, "t1route"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Println("    " + line)
	}
	if err != nil && mustPass {
		r.Fatalf("t1route %s: %v", strings.Join(args, " "), err)
	}
}

func routeTable(sim *nsxsim.Simulator) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NETWORK\tNEXT HOP\tNODE\tOWNER")
	rs := sim.Routes("t1-routable")
	sort.Slice(rs, func(i, j int) bool { return rs[i].Network < rs[j].Network })
	for _, r := range rs {
		node, owner := "-", "operator (not t1route's)"
		for _, t := range r.Tags {
			if t.Scope == podroute.ScopeNode {
				node = t.Tag
			}
			if t.Scope == podroute.ScopeClusterName {
				owner = "t1route, cluster " + t.Tag
			}
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", r.Network, r.NextHops[0].IPAddress, node, owner)
	}
	w.Flush()
	return b.String()
}

func showRoutes(sim *nsxsim.Simulator) {
	fmt.Print("  Tier-1 t1-routable static routes:\n" + routeTable(sim))
}

func showConditions(ctx context.Context, r *runner, c *integration.Cluster) {
	integration.Eventually(r, 30*time.Second, "node conditions", func() (bool, string) {
		nodes, _ := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		for _, n := range nodes.Items {
			if len(n.Status.Conditions) == 0 {
				return false, n.Name + " has none"
			}
		}
		return true, ""
	})
	nodes, _ := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeNetworkUnavailable {
				fmt.Printf("  %s: NetworkUnavailable=%s (%s)\n", n.Name, cond.Status, cond.Reason)
			}
		}
	}
}

func waitRoutes(r *runner, sim *nsxsim.Simulator, n int) {
	integration.Eventually(r, 30*time.Second, fmt.Sprintf("%d routes", n), func() (bool, string) {
		return len(sim.Routes("t1-routable")) == n, routeTable(sim)
	})
}
