//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// BenchmarkNodeConditions measures, on a real kube-apiserver + etcd, how long
// the controller takes to set every node's NetworkUnavailable condition
// after its route is on the Tier-1. T1ROUTE_BENCH_NODES nodes (default
// 10,000) are created with NetworkUnavailable=True, as the cloud provider
// creates them (not timed); then `t1route controller` (the binary, in its
// own process, leader election on) starts against nsxsim with NSX's
// default limits. It prints one key=value line per figure:
//
//	routes_converged            controller start -> every route on the Tier-1
//	conditions_all_set          controller start -> the last condition False
//	conditions_after_last_route the last route -> the last condition False
//	condition_lag_max / _p50    per node: its route on the Tier-1 -> its condition False
//	status_patches              node status PATCHes the API server served
//	                            (its apiserver_request_total), and the
//	                            controller's own count by result
//	lease_renew_max_gap         longest wait between two renewals of the
//	                            controller's Lease while it patched (it
//	                            renews every 2.1 s: starved calls show here)
//	controller_peak_rss_mb      VmHWM of the controller process alone
//	controller_cpu              CPU time the controller process used
//	loadavg_before / _after     /proc/loadavg (the machine's other load)
//
// Run it with `make bench-conditions` (NODES=N to change the count).
func BenchmarkNodeConditions(b *testing.B) {
	nodes := 10000
	if v := os.Getenv("T1ROUTE_BENCH_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65536 {
			b.Fatalf("T1ROUTE_BENCH_NODES=%q: want a number of nodes from 1 to 65536", v)
		}
		nodes = n
	}
	bin := BuildBinaries(b)
	c := StartCluster(b)
	sim := nsxsim.StartTest(b, nsxsim.Options{Tier1s: []string{tier1}, Latency: 10 * time.Millisecond, LatencyPerChild: 20 * time.Microsecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	created := time.Now()
	nodeOf := createBenchNodes(b, c, nodes)
	fmt.Printf("nodes=%d\nnodes_created_in=%.1fs (not counted)\n", nodes, time.Since(created).Seconds())
	fmt.Printf("loadavg_before=%s\n", loadavg())
	before, err := statusPatchesServed(ctx, c.Client)
	if err != nil {
		b.Fatal(err)
	}

	// Watch the conditions and the Tier-1 from before the controller starts.
	list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0", Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	conds := watchConditions(ctx, b, c.Client, list.ResourceVersion, nodes)
	routes := watchRoutes(ctx, sim, nodeOf)
	lease := watchLease(ctx, c.Client)

	b.ResetTimer()
	start := time.Now()
	ctrl := startControllerProcess(b, bin, c, sim)
	var lastRoute, lastCond time.Time
	select {
	case lastRoute = <-routes.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d routes on the Tier-1 after 10 minutes (controller log: %s)", routes.count(), nodes, ctrl.logPath)
	}
	select {
	case lastCond = <-conds.done:
	case <-time.After(20 * time.Minute):
		b.Fatalf("only %d of %d conditions False after 20 minutes (controller log: %s)", conds.count(), nodes, ctrl.logPath)
	}
	b.StopTimer()
	rss, cpu := ctrl.peakRSSMB(), ctrl.cpuSeconds()
	patched, err := ctrl.metric("t1route_node_condition_patches_total")
	if err != nil {
		b.Fatal(err)
	}
	after, err := statusPatchesServed(ctx, c.Client)
	if err != nil {
		b.Fatal(err)
	}
	gap, renewals := lease.maxGap(start, lastCond)
	ctrl.stop()

	var lags []time.Duration
	for name, at := range conds.at() {
		lags = append(lags, at.Sub(routes.at()[name]))
	}
	fmt.Printf("routes_converged=%.2fs\n", lastRoute.Sub(start).Seconds())
	fmt.Printf("conditions_all_set=%.2fs\n", lastCond.Sub(start).Seconds())
	fmt.Printf("conditions_after_last_route=%.2fs\n", lastCond.Sub(lastRoute).Seconds())
	fmt.Printf("condition_lag_p50=%.2fs\ncondition_lag_max=%.2fs\n", Percentile(lags, 50).Seconds(), Percentile(lags, 100).Seconds())
	fmt.Printf("status_patches=%d (controller: %s)\n", after-before, patched)
	fmt.Printf("lease_renew_max_gap=%.2fs (%d renewals seen)\n", gap.Seconds(), renewals)
	fmt.Printf("controller_peak_rss_mb=%d\ncontroller_cpu=%.1fs\n", rss, cpu)
	fmt.Printf("loadavg_after=%s\n", loadavg())
	b.ReportMetric(lastCond.Sub(start).Seconds(), "conditions_all_set_s")
}

// createBenchNodes creates nodes node-000000... with a podCIDR (a /27 of
// 100.64.0.0/11), an InternalIP (100.96.0.0/12) and NetworkUnavailable=True,
// 32 at a time; it returns each podCIDR's node.
func createBenchNodes(b *testing.B, c *Cluster, n int) map[string]string {
	rc := rest.CopyConfig(c.Config)
	rc.QPS, rc.Burst = 2000, 2000 // the API server's own APF limits the pace
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	nodeOf := make(map[string]string, n)
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Go(func() {
			for i := range work {
				if err := createBenchNode(kube, i); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range n {
		nodeOf[benchCIDR(i)] = benchNodeName(i)
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("creating nodes: %v", err)
	}
	return nodeOf
}

func createBenchNode(kube kubernetes.Interface, i int) error {
	ctx := context.Background()
	unavailable := []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue,
		Reason: "NoRouteCreated", Message: "Node created without a route", LastTransitionTime: metav1.Now()}}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: benchNodeName(i)},
		Spec: corev1.NodeSpec{PodCIDR: benchCIDR(i), PodCIDRs: []string{benchCIDR(i)}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: benchAddr(100<<24|96<<16, i+1)}},
			Conditions: unavailable}}
	got, err := kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if len(got.Status.Conditions) == 0 { // status not kept on create: set it
		got.Status.Conditions = unavailable
		_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{})
	}
	return err
}

func benchNodeName(i int) string { return fmt.Sprintf("node-%06d", i) }
func benchCIDR(i int) string     { return benchAddr(100<<24|64<<16, i<<5) + "/27" }

func benchAddr(base, off int) string {
	v := uint32(base + off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// firstSeen records when each of n names was first seen; done receives the
// time the last one was.
type firstSeen struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	n     int
	last  time.Time
	done  chan time.Time
	fired bool
}

func newFirstSeen(n int) *firstSeen {
	return &firstSeen{seen: make(map[string]time.Time, n), n: n, done: make(chan time.Time, 1)}
}

func (f *firstSeen) see(name string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[name]; ok {
		return
	}
	f.seen[name] = at
	if at.After(f.last) {
		f.last = at
	}
	if len(f.seen) == f.n && !f.fired {
		f.fired = true
		f.done <- f.last
	}
}

func (f *firstSeen) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func (f *firstSeen) at() map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// watchConditions records when each node's NetworkUnavailable condition
// is first False, from a watch of the nodes starting at resourceVersion rv.
func watchConditions(ctx context.Context, b *testing.B, kube kubernetes.Interface, rv string, n int) *firstSeen {
	f := newFirstSeen(n)
	go func() {
		for ctx.Err() == nil {
			w, err := kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				if ctx.Err() == nil {
					b.Errorf("watching nodes: %v", err)
				}
				return
			}
			for ev := range w.ResultChan() {
				node, ok := ev.Object.(*corev1.Node)
				if !ok || (ev.Type != watch.Modified && ev.Type != watch.Added && ev.Type != watch.Bookmark) {
					continue
				}
				rv = node.ResourceVersion
				for _, cond := range node.Status.Conditions {
					if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionFalse {
						f.see(node.Name, time.Now())
					}
				}
			}
			w.Stop()
		}
	}()
	return f
}

// watchRoutes records when each node's route is first on the Tier-1,
// polling the simulator every 20 ms until all are.
func watchRoutes(ctx context.Context, sim *nsxsim.Simulator, nodeOf map[string]string) *firstSeen {
	f := newFirstSeen(len(nodeOf))
	go func() {
		for ctx.Err() == nil && f.count() < len(nodeOf) {
			now := time.Now()
			for _, r := range sim.Routes(tier1) {
				if name, ok := nodeOf[r.Network]; ok {
					f.see(name, now)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return f
}

// leaseWatch records the renewals of the controller's Lease it observes.
type leaseWatch struct {
	mu       sync.Mutex
	renewals []time.Time
}

func watchLease(ctx context.Context, kube kubernetes.Interface) *leaseWatch {
	l := &leaseWatch{}
	go func() {
		var last time.Time
		for ctx.Err() == nil {
			lease, err := kube.CoordinationV1().Leases("kube-system").Get(ctx, "t1route-controller", metav1.GetOptions{})
			if err == nil && lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Equal(last) {
				last = lease.Spec.RenewTime.Time
				l.mu.Lock()
				l.renewals = append(l.renewals, last)
				l.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return l
}

// maxGap is the longest time between renewals from the first renewal after
// from until to (to counts as a renewal-in-waiting), and how many there were.
func (l *leaseWatch) maxGap(from, to time.Time) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	var prev time.Time
	n := 0
	for _, r := range append(append([]time.Time{}, l.renewals...), to) {
		if r.Before(from) || r.After(to) {
			continue
		}
		if !prev.IsZero() && r.Sub(prev) > gap {
			gap = r.Sub(prev)
		}
		prev = r
		n++
	}
	return gap, n - 1
}

// statusPatchesServed is the API server's count of node status PATCHes
// (apiserver_request_total, every response code).
func statusPatchesServed(ctx context.Context, kube kubernetes.Interface) (int64, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="nodes"`) ||
			!strings.Contains(line, `subresource="status"`) || !strings.Contains(line, `verb="PATCH"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += int64(v)
	}
	return total, sc.Err()
}

// controllerProcess is `t1route controller` running in its own process.
type controllerProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
	logPath     string
	stopped     bool
}

func startControllerProcess(b *testing.B, bin string, c *Cluster, sim *nsxsim.Simulator) *controllerProcess {
	p := &controllerProcess{metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(b)), logPath: filepath.Join(b.TempDir(), "controller.log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		b.Fatal(err)
	}
	settings := SimSettings(sim, tier1)
	settings["NSXT_POD_ROUTING_ENABLED"], settings["CLUSTER_CIDR"], settings["CLUSTER_NAME"] = "true", "100.64.0.0/11", "bench"
	p.cmd = exec.Command(filepath.Join(bin, "t1route"), "controller", "--kubeconfig", c.Kubeconfig,
		"--metrics-bind-address", p.metricsAddr, "--metrics-secure=false", "--leader-election-namespace", "kube-system", "--log-format", "console")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, Environ(settings)...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.stop(); logFile.Close() })
	return p
}

func (p *controllerProcess) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }() //nolint:errcheck
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill() //nolint:errcheck
		<-done
	}
}

// peakRSSMB is the process's VmHWM in MB, or -1.
func (p *controllerProcess) peakRSSMB() int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb / 1024
		}
	}
	return -1
}

// cpuSeconds is the CPU time (user + system) the process has used, or -1.
func (p *controllerProcess) cpuSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces): state is the
	// 3rd field of stat, utime and stime the 14th and 15th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// metric is the controller's samples of a metric, as "label=value ...".
func (p *controllerProcess) metric(name string) (string, error) {
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok && !strings.HasPrefix(sc.Text(), "#") {
			out = append(out, strings.NewReplacer("{", "", "}", "", `"`, "", " ", ":").Replace(strings.TrimSpace(rest)))
		}
	}
	return strings.Join(out, " "), sc.Err()
}

func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}
