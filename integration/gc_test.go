//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/gc"
)

// putClusterRoutes puts n routes of another cluster (as its t1route
// controller would have made them) on the Tier-1.
func putClusterRoutes(t *testing.T, sim *nsxsim.Simulator, uid, name string, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		network := fmt.Sprintf("100.97.%d.0/24", i)
		id := podroute.Identity{UID: uid, Name: name}.RouteID(network)
		err := sim.PutRoute(tier1, id, network, []string{nodeIP(i)},
			nsxsim.Tag{Scope: podroute.ScopeManagedBy, Tag: podroute.ManagedByValue},
			nsxsim.Tag{Scope: podroute.ScopeClusterUID, Tag: uid},
			nsxsim.Tag{Scope: podroute.ScopeClusterName, Tag: name},
			nsxsim.Tag{Scope: podroute.ScopeNode, Tag: nodeName(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func routeIDs(sim *nsxsim.Simulator) []string {
	var ids []string
	for _, r := range sim.Routes(tier1) {
		ids = append(ids, r.ID)
	}
	return ids
}

func countCluster(sim *nsxsim.Simulator, name string) int {
	n := 0
	for _, r := range sim.Routes(tier1) {
		for _, tag := range r.Tags {
			if tag.Scope == podroute.ScopeClusterName && tag.Tag == name {
				n++
			}
		}
	}
	return n
}

// simEnv is the NSXT_* environment that points the t1route binary at sim.
func simEnv(sim *nsxsim.Simulator) []string { return Environ(SimSettings(sim, tier1)) }

func TestGCCommand(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	dyn := InstallClusterAPICRD(t, c)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	putClusterRoutes(t, sim, "uid-gone", "gone", 0, 3)
	putClusterRoutes(t, sim, "uid-live", "live", 10, 2)
	putClusterRoutes(t, sim, "uid-mgmt", "mgmt", 20, 1)
	// Hand-made routes, even ones naming a cluster, are never touched.
	if err := sim.PutRoute(tier1, "handmade", "100.97.99.0/24", []string{"198.51.100.5"}, nsxsim.Tag{Scope: podroute.ScopeClusterName, Tag: "gone"}); err != nil {
		t.Fatal(err)
	}
	CreateCAPICluster(t, dyn, "default", "live", nil)

	gc := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"gc"}, args...)...)
		cmd.Env = append(os.Environ(), simEnv(sim)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	before := routeIDs(sim)
	out, err := gc("--cluster", "gone")
	if err != nil || !strings.Contains(out, "dry run: 3 route(s) would be deleted") || !slices.Equal(before, routeIDs(sim)) {
		t.Fatalf("dry run changed something or said the wrong thing: %v\n%s", err, out)
	}
	for i := range 3 {
		if !strings.Contains(out, fmt.Sprintf("100.97.%d.0/24", i)) {
			t.Fatalf("the dry run does not list 100.97.%d.0/24:\n%s", i, out)
		}
	}
	if strings.Contains(out, "Invoking action") {
		t.Fatalf("the SDK's request log leaks into the command's output:\n%s", out)
	}
	if out, err = gc("--cluster", "gone", "--yes"); err != nil || !strings.Contains(out, "deleted 3 route(s)") {
		t.Fatalf("gc --yes: %v\n%s", err, out)
	}
	if countCluster(sim, "gone") != 1 { // the hand-made route only
		t.Fatalf("after gc: %v", routeIDs(sim))
	}
	if _, ok := sim.Route(tier1, "handmade"); !ok {
		t.Fatal("gc deleted a route without t1route's tags")
	}
	if out, err = gc("--cluster", "gone", "--yes"); err != nil || !strings.Contains(out, "nothing to collect") {
		t.Fatalf("second gc: %v\n%s", err, out)
	}

	// Orphans: "mgmt" is not a Cluster API cluster, "live" is.
	kubeconfig := c.Kubeconfig
	out, err = gc("--orphans", "--live-clusters-kubeconfig", kubeconfig)
	if err != nil || !strings.Contains(out, "cluster mgmt (UID uid-mgmt)") || strings.Contains(out, "cluster live") {
		t.Fatalf("orphans dry run: %v\n%s", err, out)
	}
	if out, err = gc("--orphans", "--live-clusters-kubeconfig", kubeconfig, "--keep", "mgmt", "--yes"); err != nil || !strings.Contains(out, "nothing to collect") {
		t.Fatalf("--keep: %v\n%s", err, out)
	}
	if countCluster(sim, "live") != 2 || countCluster(sim, "mgmt") != 1 {
		t.Fatalf("live or kept routes removed: %v", routeIDs(sim))
	}

	// Bad input: clear errors, exit 2, nothing changed.
	for _, args := range [][]string{{}, {"--cluster", "x", "--orphans"}, {"--orphans"}} {
		out, err := gc(args...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.TrimSpace(out) == "" {
			t.Fatalf("gc %v: want exit 2 with a message, got %v\n%s", args, err, out)
		}
	}
}

// The cleanup controller protects clusters with routable pods and, when one
// is deleted, removes its routes and releases it once Cluster API is done;
// stopped and restarted mid-cleanup, it finishes the job.
func TestCleanupController(t *testing.T) {
	c := StartCluster(t)
	dyn := InstallClusterAPICRD(t, c)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	client := newSimClient(t, sim)
	putClusterRoutes(t, sim, "uid-w1", "wl-1", 0, 3)
	putClusterRoutes(t, sim, "uid-w2", "wl-2", 10, 2)
	const capiFinalizer = "cluster.cluster.x-k8s.io"
	CreateCAPICluster(t, dyn, "default", "wl-1", nil, capiFinalizer)
	CreateCAPICluster(t, dyn, "default", "wl-2", nil, capiFinalizer)
	CreateCAPICluster(t, dyn, "default", "no-routes", nil)
	CreateCAPICluster(t, dyn, "default", "labelled", map[string]string{gc.PodRoutingLabel: "true"})
	clusters := dyn.Resource(gc.ClusterAPIClusters).Namespace("default")
	finalizers := func(name string) ([]string, bool) {
		u, err := clusters.Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return u.GetFinalizers(), true
	}
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			gc.NewCleanupController(gc.CleanupConfig{Router: tier1Path, Resync: time.Second}, dyn, client, zap.NewNop()).Run(ctx) //nolint:errcheck
		}()
		return func() { cancel(); <-done }
	}
	stop := start()
	Eventually(t, 20*time.Second, "finalizers on clusters with routable pods", func() (bool, string) {
		f1, _ := finalizers("wl-1")
		f2, _ := finalizers("wl-2")
		fl, _ := finalizers("labelled")
		fn, _ := finalizers("no-routes")
		return slices.Contains(f1, gc.CleanupFinalizer) && slices.Contains(f2, gc.CleanupFinalizer) &&
			slices.Contains(fl, gc.CleanupFinalizer) && !slices.Contains(fn, gc.CleanupFinalizer), fmt.Sprint(f1, f2, fl, fn)
	})

	if err := clusters.Delete(context.Background(), "wl-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 20*time.Second, "wl-1's routes removed", func() (bool, string) { return countCluster(sim, "wl-1") == 0, fmt.Sprint(routeIDs(sim)) })
	// Cluster API is still tearing wl-1 down (its finalizer is there): ours stays.
	stop()
	if f, ok := finalizers("wl-1"); !ok || !slices.Contains(f, gc.CleanupFinalizer) {
		t.Fatalf("released before Cluster API finished: %v %v", f, ok)
	}
	// While the controller is down, wl-1's own t1route re-creates a route, then Cluster API finishes.
	putClusterRoutes(t, sim, "uid-w1", "wl-1", 5, 1)
	u, _ := clusters.Get(context.Background(), "wl-1", metav1.GetOptions{})
	u.SetFinalizers(slices.DeleteFunc(u.GetFinalizers(), func(f string) bool { return f == capiFinalizer }))
	if _, err := clusters.Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop = start()
	defer stop()
	Eventually(t, 20*time.Second, "wl-1 released after its late route is removed", func() (bool, string) {
		_, exists := finalizers("wl-1")
		return !exists && countCluster(sim, "wl-1") == 0, fmt.Sprint(routeIDs(sim))
	})
	if countCluster(sim, "wl-2") != 2 {
		t.Fatalf("another cluster's routes were touched: %v", routeIDs(sim))
	}
}

func TestRoutesList(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	uid, err := podroute.ClusterUID(context.Background(), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	putClusterRoutes(t, sim, uid, "mine", 0, 2)
	putClusterRoutes(t, sim, "uid-other", "other", 10, 1)
	list := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"routes", "list", "--kubeconfig", c.Kubeconfig}, args...)...)
		cmd.Env = append(os.Environ(), append(simEnv(sim), "CLUSTER_NAME=mine")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("routes list %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var views []struct {
		Network  string   `json:"network"`
		NextHops []string `json:"nextHops"`
		Node     string   `json:"node"`
		Realized string   `json:"realized"`
	}
	if err := json.Unmarshal([]byte(list("-o", "json")), &views); err != nil || len(views) != 2 {
		t.Fatalf("json: %v %+v", err, views)
	}
	if views[0].Network != "100.97.0.0/24" || views[0].NextHops[0] != nodeIP(0) || views[0].Node != nodeName(0) || views[0].Realized != "REALIZED" {
		t.Fatalf("json view: %+v", views[0])
	}
	if y := list("-o", "yaml"); !strings.Contains(y, "network: 100.97.1.0/24") || strings.Contains(y, "100.97.10.0/24") {
		t.Fatalf("yaml:\n%s", y)
	}
	table := list()
	if !strings.Contains(table, "NETWORK") || !strings.Contains(table, "100.97.0.0/24  "+nodeIP(0)) || strings.Contains(table, "other") {
		t.Fatalf("table:\n%s", table)
	}
	if all := list("--all-clusters", "--realization=false"); !strings.Contains(all, "other") {
		t.Fatalf("--all-clusters:\n%s", all)
	}
	// Realization is read in bulk: 40 routes cost a few calls, not one each.
	putClusterRoutes(t, sim, uid, "mine", 100, 38)
	sim.ResetStats()
	if table := list(); strings.Count(table, "REALIZED") != 41 { // the header too
		t.Fatalf("40 routes, all realized, want 40 REALIZED:\n%s", table)
	}
	if st := sim.Stats(); st.Requests > 10 {
		t.Fatalf("routes list of 40 routes made %d NSX requests (%v); realization must be read from the forwarding table", st.Requests, st.ByMethod)
	}
}

// Two cleanup-controller replicas: one leads; when the first is stopped the
// job still gets done.
func TestCleanupControllerBinaryLeaderElection(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	dyn := InstallClusterAPICRD(t, c)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	putClusterRoutes(t, sim, "uid-w9", "wl-9", 0, 2)
	CreateCAPICluster(t, dyn, "default", "wl-9", nil)
	clusters := dyn.Resource(gc.ClusterAPIClusters).Namespace("default")
	var procs []*exec.Cmd
	for range 2 {
		cmd := exec.Command(filepath.Join(bin, "t1route"), "cleanup-controller", "--kubeconfig", c.Kubeconfig,
			"--resync-period", "1s", "--leader-election-namespace", "kube-system", "--log-format", "console")
		cmd.Env = append(os.Environ(), simEnv(sim)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }) //nolint:errcheck
		procs = append(procs, cmd)
	}
	Eventually(t, 30*time.Second, "a leader and the finalizer", func() (bool, string) {
		lease, err := c.Client.CoordinationV1().Leases("kube-system").Get(context.Background(), "t1route-cleanup-controller", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return false, fmt.Sprint("no leader: ", err)
		}
		u, err := clusters.Get(context.Background(), "wl-9", metav1.GetOptions{})
		return err == nil && slices.Contains(u.GetFinalizers(), gc.CleanupFinalizer), fmt.Sprint(err)
	})
	procs[0].Process.Signal(syscall.SIGTERM) //nolint:errcheck
	procs[0].Wait()                          //nolint:errcheck
	if err := clusters.Delete(context.Background(), "wl-9", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 40*time.Second, "wl-9's routes removed and the Cluster released by whichever replica leads", func() (bool, string) {
		_, err := clusters.Get(context.Background(), "wl-9", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && countCluster(sim, "wl-9") == 0, fmt.Sprint(err, routeIDs(sim))
	})
}

// gc --cluster refuses the routes of the cluster the kubeconfig in use
// reaches (a live cluster) unless --force, and warns that they changed
// recently.
func TestGCRefusesLiveCluster(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	uid, err := podroute.ClusterUID(context.Background(), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	putClusterRoutes(t, sim, uid, "here", 0, 2)
	gc := func(args ...string) (string, int) {
		cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"gc", "--kubeconfig", c.Kubeconfig}, args...)...)
		cmd.Env = append(os.Environ(), simEnv(sim)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := gc("--cluster", "here", "--yes")
	if code != 2 || !strings.Contains(out, "refusing: cluster here (UID "+uid+") is the cluster the kubeconfig in use reaches") || countCluster(sim, "here") != 2 {
		t.Fatalf("exit %d, %d routes left:\n%s", code, countCluster(sim, "here"), out)
	}
	out, code = gc("--cluster", uid, "--force")
	if code != 0 || !strings.Contains(out, "(--force)") || !strings.Contains(out, "warning: these routes were last changed") || !strings.Contains(out, "dry run: 2 route(s)") {
		t.Fatalf("--force dry run: exit %d:\n%s", code, out)
	}
}
