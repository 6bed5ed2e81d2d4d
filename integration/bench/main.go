// Command bench measures the route controller against NSX's limits: the
// real controller code (node informer, desired state, diff, batching, the
// NSX client with its default limits, configured and connected as t1route
// controller is) fed with --nodes nodes from a fake API server, against
// nsxsim with NSX's default API limits (100 requests/s, 40 concurrent) and a
// latency model. It prints one key=value line per figure:
//
//	converge     time from start until every route is on the Tier-1
//	calls        NSX requests made to converge (session login included)
//	resync_reads / resync_writes   requests of one resync pass with nothing to change
//	change_p50 / change_p99        node address change -> next hop updated on the Tier-1
//	change_slowest                 the slowest change's time, @ its index (0: the first)
//	check_calls  NSX requests of one full `t1route check` of every route (the
//	             forwarding table, and the route list only when that does not
//	             hold every route; retries included, session login not),
//	             counted by the check's own client
//	peak_rss_mb  peak RSS of the bench process from the controller's start
//	             (peak_from=controller-start; process-start where the kernel
//	             cannot reset the peak) to the end; rss_scope says what it
//	             holds: controller+nsxsim+fake-apiserver, or with
//	             --external-nsxsim controller+fake-apiserver (an upper bound
//	             for the controller; the fake API server's log of the calls
//	             it answered is cleared every 100 ms, as nothing reads it)
//	peak_rss_before_check_mb  the same peak before the bench's own check
//	             runs: while the controller converges, takes the node
//	             changes and one resync
//	rss_before_controller_mb  RSS once the fake API server holds every node,
//	             before the controller starts: peak_rss_mb minus it is the
//	             controller's share (as close as one process can tell)
//
// Its first line, settings=, names the simulation it ran against: NSX's
// latency, realization delay and search lag (honest by default: a route is
// unrealized for 2 s after each change, as NSX's realization lags).
//
// --router-path runs it on a Tier-1 inside a project or on a VPC (the
// project's hierarchical call, or /org-root's) instead of /infra's Tier-1.
//
// Run it with `go run ./integration/bench --nodes N [--external-nsxsim] [--router-path P]` or
// `make bench-controller ARGS='--nodes N'`. It is a development tool: it
// links nsxsim and client-go's fake clientset, which t1route must not.
package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
)

type benchFlags struct {
	nodes, changes        int
	batchSize             int
	latency, latencyChild time.Duration
	resync                time.Duration
	realizeDelay          time.Duration
	searchLag             time.Duration
	external              bool
	nsxsim                string
	routerPath            string
}

func main() {
	var f benchFlags
	fl := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fl.IntVar(&f.nodes, "nodes", 10000, "number of nodes")
	fl.IntVar(&f.batchSize, "batch-size", 0, "routes per hierarchical call (0: the client's default, 1000); smaller batches encode less at once")
	fl.IntVar(&f.changes, "changes", 50, "node address changes to time")
	fl.DurationVar(&f.latency, "latency", 10*time.Millisecond, "simulated NSX latency per call")
	fl.DurationVar(&f.latencyChild, "latency-per-route", 20*time.Microsecond, "simulated NSX latency per route of a hierarchical call")
	fl.BoolVar(&f.external, "external-nsxsim", false, "run the nsxsim binary in its own process, so peak_rss_mb is the controller's (and the fake API server's)")
	fl.StringVar(&f.nsxsim, "nsxsim", "", "the nsxsim binary for --external-nsxsim (default: next to this program, else bin/nsxsim, else on PATH)")
	fl.DurationVar(&f.realizeDelay, "realize-delay", 2*time.Second, "how long nsxsim keeps a changed route unrealized (IN_PROGRESS, missing from the forwarding table); 0: at once")
	fl.DurationVar(&f.searchLag, "search-lag", 5*time.Second, "how long nsxsim's search index lags writes (t1route does not read search; set so nothing leans on it)")
	fl.DurationVar(&f.resync, "resync-period", 20*time.Second, "resync period; changes are timed before the first resync, then one resync pass is measured")
	fl.StringVar(&f.routerPath, "router-path", "/infra/tier-1s/"+nsxsim.DefaultTier1, "NSXT_ROUTER_PATH the controller keeps its routes on: a Tier-1 (/infra/tier-1s/<id>), a Tier-1 in a project (/orgs/<org>/projects/<p>/infra/tier-1s/<id>) or a VPC (/orgs/<org>/projects/<p>/vpcs/<vpc>); nsxsim creates it")
	if err := fl.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			return
		}
		os.Exit(2)
	}
	if err := runBench(context.Background(), f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchNode(i int, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%06d", i)},
		Spec:   corev1.NodeSpec{PodCIDRs: []string{benchPodCIDR(i)}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

// Every address the bench uses, though only data (it sends no packets), is in
// the shared address space 100.64.0.0/10, as the project's test rules ask:
// podCIDRs are /27s of benchClusterCIDR (65,536 of them fill the /11), node
// addresses come from 100.96.0.0/12 and readdressed nodes from 100.112.0.0/12.
const benchClusterCIDR = "100.64.0.0/11"

func benchPodCIDR(i int) string { return fmt.Sprintf("%s/27", addrAt(100<<24|64<<16, i<<5)) }

// benchIP is node i's address.
func benchIP(i int) string { return addrAt(100<<24|96<<16, i+1) }

// benchChangedIP is the address the k-th readdressing gives a node.
func benchChangedIP(k int) string { return addrAt(100<<24|112<<16, k+1) }

// addrAt is the IPv4 address base+off.
func addrAt(base, off int) string {
	v := uint32(base + off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func runBench(ctx context.Context, f benchFlags, out io.Writer) error {
	if f.nodes < 1 || f.nodes > 65536 {
		return fmt.Errorf("--nodes must be between 1 and 65536 (the bench's %s holds that many /27s)", benchClusterCIDR)
	}
	router, err := nsx.ParseRouterPath(f.routerPath)
	if err != nil {
		return fmt.Errorf("--router-path: %w", err)
	}
	f.routerPath = router.String()
	klog.SetLogger(logr.Discard())
	nsx.RouteSDKLogs(zap.NewNop())
	start := startInProcessNSX
	if f.external {
		start = startExternalNSX
	}
	sim, err := start(f)
	if err != nil {
		return err
	}
	defer sim.close()
	// Configured and connected as t1route controller is (session login,
	// NSX's default client limits).
	user, pass := sim.user()
	cfg, problems := config.Load(config.FromMap(map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": sim.url(),
		"NSXT_ROUTER_PATH": f.routerPath, "CLUSTER_CIDR": benchClusterCIDR, "CLUSTER_NAME": "bench",
		"NSXT_USERNAME": user, "NSXT_PASSWORD": pass, "NSXT_ROOT_CA_DATA_B64": base64.StdEncoding.EncodeToString(sim.caPEM())}))
	if len(problems) > 0 {
		return fmt.Errorf("configuration: %v", problems)
	}
	conn, err := connect.NSX(ctx, cfg, nil, connect.Options{BatchSize: f.batchSize})
	if err != nil {
		return err
	}
	kube := fake.NewSimpleClientset()
	// The fake API server's watch holds 100 events and panics beyond, so
	// node status patches (conditions) are answered but not stored: the
	// controller still makes every call. A real API server has no such limit
	// (the integration tests use one).
	var statusPatches atomic.Int64
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		statusPatches.Add(1)
		n, err := kube.Tracker().Get(corev1.SchemeGroupVersion.WithResource("nodes"), "", a.(k8stesting.PatchAction).GetName())
		return true, n, err
	})
	// The fake API server keeps a deep copy of every request it answers
	// (its action log, for tests to inspect): the nodes created here, then
	// the controller's 10,000 status patches, events and node updates. The
	// bench never reads it, and no API server holds such a log in the
	// controller's process: it is cleared as nodes are created and every
	// 100 ms while the controller runs, so the RSS figures do not grow with
	// the calls the controller makes.
	for i := range f.nodes {
		if _, err := kube.CoreV1().Nodes().Create(ctx, benchNode(i, benchIP(i)), metav1.CreateOptions{}); err != nil {
			return err
		}
		if i%1000 == 999 {
			kube.ClearActions()
		}
	}
	kube.ClearActions()
	// What the process holds before the controller starts (the fake API
	// server's nodes, the runtime; nsxsim too unless external): peak RSS
	// minus this is the controller's share.
	goruntime.GC()
	rssBefore := procStatusMB("VmRSS:")
	// Peaks are measured from here: creating the fake API server's nodes is
	// the bench's own work.
	peakScope := "controller-start"
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		peakScope = "process-start" // the kernel cannot reset the peak
	}
	id := podroute.Identity{UID: "00000000-0000-4000-8000-0000000bench", Name: cfg.ClusterName}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go wait.Until(kube.ClearActions, 100*time.Millisecond, ctx.Done())
	if err := sim.resetStats(); err != nil {
		return err
	}
	fmt.Fprintf(out, "settings=latency:%s,latency_per_route:%s,realize_delay:%s,search_lag:%s,rate_limit:100/s,concurrency:40,resync:%s,external_nsxsim:%t,batch_size:%d,router:%s\n",
		f.latency, f.latencyChild, f.realizeDelay, f.searchLag, f.resync, f.external, f.batchSize, f.routerPath)
	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		podroute.Run(ctx, kube, conn.Client, podroute.RunOptions{Config: podroute.Config{Identity: id, Router: cfg.RouterPath,
			ClusterCIDRs: cfg.ClusterCIDRs, ResyncPeriod: f.resync}, Log: benchLog()})
	}()
	for n, _ := sim.routeCount(); n < f.nodes; n, _ = sim.routeCount() {
		if time.Since(began) > 30*time.Minute {
			return fmt.Errorf("did not converge in 30 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	converge := time.Since(began)
	var ms goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&ms)
	liveHeap := ms.HeapAlloc
	st, err := sim.stats()
	if err != nil {
		return err
	}
	calls := st.Requests
	fmt.Fprintf(out, "nodes=%d\nconverge=%.2fs\ncalls=%d\nlive_heap_after_converge_mb=%d\n", f.nodes, converge.Seconds(), calls, liveHeap>>20)

	// Node address changes, one at a time, before the first resync: time
	// until the route's next hop follows.
	var lat []time.Duration
	for k := range f.changes {
		i := (k * 7919) % f.nodes
		n, err := kube.CoreV1().Nodes().Get(ctx, fmt.Sprintf("node-%06d", i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		ip := benchChangedIP(k)
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		t0 := time.Now()
		if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		rid := id.RouteID(n.Spec.PodCIDRs[0])
		for {
			if hop, ok := sim.nextHop(rid); ok && hop == ip {
				break
			}
			if time.Since(t0) > time.Minute {
				return fmt.Errorf("change %d not applied within a minute", k)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	if len(lat) > 0 {
		slowest := 0
		for k := range lat {
			if lat[k] > lat[slowest] {
				slowest = k
			}
		}
		fmt.Fprintf(out, "change_slowest=%dms@%d\n", lat[slowest].Milliseconds(), slowest)
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		pct := func(p float64) time.Duration { return lat[int(math.Ceil(p*float64(len(lat))))-1] }
		fmt.Fprintf(out, "change_p50=%dms\nchange_p99=%dms\n", pct(0.50).Milliseconds(), pct(0.99).Milliseconds())
	}
	// One resync pass with nothing to change: from the end of the changes
	// until the pass after the next resync tick has finished.
	if err := sim.resetStats(); err != nil {
		return err
	}
	gets := func() int { s, _ := sim.stats(); return s.ByMethod["GET"] }
	for gets() == 0 && time.Since(began) < 10*f.resync {
		time.Sleep(10 * time.Millisecond)
	}
	for last := -1; ; { // until the pass has read all its pages
		time.Sleep(time.Second)
		if n := gets(); n == last {
			break
		} else {
			last = n
		}
	}
	st, err = sim.stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "resync_reads=%d\nresync_writes=%d\n", st.ByMethod["GET"], st.RoutesWritten)
	// One full check, as `t1route check` reads NSX: the Tier-1's routes, then
	// their realization in bulk. Every route is realized by now (the resync
	// pass took longer than the realization delay); wait for it all the same.
	peakController := procStatusMB("VmHWM:")
	checkCalls, err := benchCheck(ctx, cfg, id, f, kube)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "check_calls=%d\n", checkCalls)
	scope := "controller+nsxsim+fake-apiserver"
	if f.external {
		scope = "controller+fake-apiserver"
	}
	fmt.Fprintf(out, "peak_rss_mb=%d\npeak_rss_before_check_mb=%d\npeak_from=%s\nrss_scope=%s\nrss_before_controller_mb=%d\ncondition_patches=%d\n",
		procStatusMB("VmHWM:"), peakController, peakScope, scope, rssBefore, statusPatches.Load())
	cancel()
	<-done
	return nil
}

// benchCheck runs the NSX side of `t1route check` (podroute.Check, on a
// client connected as check connects) once every route is realized, and returns how many NSX requests
// that check made (retries included, the session login not), counted by its
// own client so the controller's calls meanwhile are not.
func benchCheck(ctx context.Context, cfg config.Config, id podroute.Identity, f benchFlags, kube kubernetes.Interface) (int, error) {
	var requests atomic.Int64
	conn, err := connect.NSX(ctx, cfg, nil, connect.Options{Limits: nsx.Limits{RateLimit: 50, MaxInFlight: 10}, BatchSize: 1000,
		Observe: func(_ string, _, attempts int, _ time.Duration) { requests.Add(int64(attempts)) }})
	if err != nil {
		return 0, err
	}
	if err := conn.WaitReady(ctx, 30*time.Second); err != nil {
		return 0, err
	}
	c := conn.Client
	deadline := time.Now().Add(f.realizeDelay + time.Minute)
	// The nodes as the API has them now (some readdressed), as check lists them.
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	nodes := make([]podroute.Node, 0, len(list.Items))
	for i := range list.Items {
		nodes = append(nodes, podroute.FromNode(&list.Items[i]))
	}
	for {
		requests.Store(0)
		verdicts, err := podroute.Check(ctx, c, cfg.RouterPath, id, cfg.ClusterCIDRs, nodes)
		if err != nil {
			return 0, err
		}
		realized, found := 0, 0
		for _, v := range verdicts {
			if v.Problem == "" {
				found++
				if v.Realization.State == nsx.StateRealized {
					realized++
				}
			}
		}
		if found != f.nodes {
			return 0, fmt.Errorf("check: %d of %d routes found", found, f.nodes)
		}
		if realized == found {
			return int(requests.Load()), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("check: %d of %d routes realized after %s", realized, found, f.realizeDelay+time.Minute)
		}
		time.Sleep(f.realizeDelay / 4)
	}
}

// procStatusMB reads a size field of /proc/self/status (VmHWM: peak RSS,
// VmRSS: current RSS) in MB, or -1.
func procStatusMB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb / 1024
		}
	}
	return -1
}

func benchLog() *zap.Logger {
	if os.Getenv("T1ROUTE_BENCH_DEBUG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}
