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
//	peak_rss_mb  peak RSS of the whole bench process: controller, nsxsim and the
//	             fake API server's objects together (an upper bound for the controller)
//
// Run it with `go run ./integration/bench --nodes N [--external-nsxsim]` or
// `make bench-controller ARGS='--nodes N'`. It is a development tool: it
// links nsxsim and client-go's fake clientset, which t1route must not.
package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
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
	latency, latencyChild time.Duration
	resync                time.Duration
	external              bool
	nsxsim                string
}

func main() {
	var f benchFlags
	fl := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fl.IntVar(&f.nodes, "nodes", 10000, "number of nodes")
	fl.IntVar(&f.changes, "changes", 50, "node address changes to time")
	fl.DurationVar(&f.latency, "latency", 10*time.Millisecond, "simulated NSX latency per call")
	fl.DurationVar(&f.latencyChild, "latency-per-route", 20*time.Microsecond, "simulated NSX latency per route of a hierarchical call")
	fl.BoolVar(&f.external, "external-nsxsim", false, "run the nsxsim binary in its own process, so peak_rss_mb is the controller's (and the fake API server's)")
	fl.StringVar(&f.nsxsim, "nsxsim", "", "the nsxsim binary for --external-nsxsim (default: next to this program, else bin/nsxsim, else on PATH)")
	fl.DurationVar(&f.resync, "resync-period", 20*time.Second, "resync period; changes are timed before the first resync, then one resync pass is measured")
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

// benchClusterCIDR holds 65,536 node /24s.
const benchClusterCIDR = "10.0.0.0/8"

func benchPodCIDR(i int) string { return fmt.Sprintf("10.%d.%d.0/24", i/256, i%256) }

// benchIP is node i's address in the benchmarking range 198.18.0.0/15
// (addresses are data here: the bench sends no packets).
func benchIP(i int) string { return fmt.Sprintf("198.%d.%d.%d", 18+i/62500, (i/250)%250, i%250+1) }

func runBench(ctx context.Context, f benchFlags, out io.Writer) error {
	if f.nodes < 1 || f.nodes > 65536 {
		return fmt.Errorf("--nodes must be between 1 and 65536 (the bench's %s holds that many /24s)", benchClusterCIDR)
	}
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
		"NSXT_ROUTER_PATH": "/infra/tier-1s/" + nsxsim.DefaultTier1, "CLUSTER_CIDR": benchClusterCIDR, "CLUSTER_NAME": "bench",
		"NSXT_USERNAME": user, "NSXT_PASSWORD": pass, "NSXT_ROOT_CA_DATA_B64": base64.StdEncoding.EncodeToString(sim.caPEM())}))
	if len(problems) > 0 {
		return fmt.Errorf("configuration: %v", problems)
	}
	conn, err := connect.NSX(ctx, cfg, nil, connect.Options{})
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
	for i := range f.nodes {
		if _, err := kube.CoreV1().Nodes().Create(ctx, benchNode(i, benchIP(i)), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	id := podroute.Identity{UID: "00000000-0000-4000-8000-0000000bench", Name: cfg.ClusterName}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := sim.resetStats(); err != nil {
		return err
	}
	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		podroute.Run(ctx, kube, conn.Client, podroute.RunOptions{Config: podroute.Config{Identity: id, Tier1Path: cfg.RouterPath,
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
		ip := fmt.Sprintf("198.19.%d.%d", 250+k/250, k%250+1)
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
	scope := "controller+nsxsim+fake-apiserver"
	if f.external {
		scope = "controller+fake-apiserver"
	}
	fmt.Fprintf(out, "peak_rss_mb=%d\nrss_scope=%s\ncondition_patches=%d\n", peakRSSMB(), scope, statusPatches.Load())
	cancel()
	<-done
	return nil
}

// peakRSSMB reads the process's peak resident set size (VmHWM) on Linux.
func peakRSSMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
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
