//go:build integration && e2e

package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/integration"
)

// BenchmarkClusterPodStart measures pod start through the real install
// (make bench-cluster, root): on a cluster of two real nodes with t1route
// installed by `render | kubectl apply`, BENCH_PODS (default 25) pods are
// created one after another, alternating nodes, each once the one before
// is Ready. Per pod it measures created -> Ready as a client watching the
// API server sees it (the pods have no readiness probe, so Ready means the
// kubelet ran the sandbox, CNI ADD and the container and reported it), and
// from containerd's own log the CNI ADD (libcni running the conflist's
// plugins, t1route-cni's flow sync with the agent included) and the whole
// RunPodSandbox. make bench-datapath's libcni figure is the same ADD
// without the kubelet and containerd around it.
func BenchmarkClusterPodStart(b *testing.B) {
	requireRoot(b)
	pods := 25
	if s := os.Getenv("BENCH_PODS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_PODS=%q: want a number of pods, at least 1", s)
		}
		pods = n
	}
	ctx := context.Background()
	layout := imageLayout(b, "v0.0.0-bench-cluster", true)
	c := startCluster(b, Config{ImageLayout: layout, ContainerdDebug: true}, "node-a-containerd", "node-b-containerd", "node-a-kubelet")
	installT1route(ctx, b, c)
	// The controller's pods pull t1route's image on both nodes: the pods
	// below find it there, as pods of a running cluster would.
	if err := waitAgents(ctx, c); err != nil {
		b.Fatal(err)
	}
	if err := waitController(ctx, c); err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	readyAt := map[string]chan time.Time{}
	w, err := c.Client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "bench=pod-start"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ready(p) {
				at := time.Now()
				mu.Lock()
				if ch, ok := readyAt[p.Name]; ok {
					select {
					case ch <- at:
					default: // seen Ready before
					}
				}
				mu.Unlock()
			}
		}
	}()

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var toReady []time.Duration
		for i := range pods {
			node := c.Nodes[i%len(c.Nodes)].Name
			p := echoPod(c, node, fmt.Sprintf("bench-%d-%d", it, i))
			p.Labels["bench"] = "pod-start"
			p.Spec.Containers[0].ReadinessProbe, p.Spec.Containers[0].LivenessProbe = nil, nil
			ch := make(chan time.Time, 1)
			mu.Lock()
			readyAt[p.Name] = ch
			mu.Unlock()
			created := time.Now()
			if _, err := c.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			select {
			case at := <-ch:
				toReady = append(toReady, at.Sub(created))
			case <-time.After(2 * time.Minute):
				b.Fatalf("%s on %s not Ready after 2 min", p.Name, node)
			}
		}
		b.StopTimer()
		all, err := c.SandboxTimings()
		if err != nil {
			b.Fatal(err)
		}
		var cniAdd, sandbox []time.Duration
		for _, s := range all {
			if strings.HasPrefix(s.Pod, fmt.Sprintf("default/bench-%d-", it)) {
				sandbox = append(sandbox, s.Sandbox)
				if s.CNIAdd > 0 {
					cniAdd = append(cniAdd, s.CNIAdd)
				}
			}
		}
		if len(cniAdd) != pods || len(sandbox) != pods {
			b.Fatalf("containerd logged %d sandboxes and %d CNI ADDs of the %d pods", len(sandbox), len(cniAdd), pods)
		}
		fmt.Printf("pod start through the real kubelet, %d pods one after another on %d nodes (kubelet 1.35, containerd 1.6, userspace OVS, 2 cores): "+
			"created -> Ready p50 %s p99 %s; CNI ADD as containerd runs it p50 %s p99 %s; RunPodSandbox p50 %s p99 %s\n",
			pods, len(c.Nodes), integration.Percentile(toReady, 50), integration.Percentile(toReady, 99), integration.Percentile(cniAdd, 50), integration.Percentile(cniAdd, 99), integration.Percentile(sandbox, 50), integration.Percentile(sandbox, 99))
		b.ReportMetric(float64(integration.Percentile(toReady, 50).Milliseconds()), "ms-p50-ready")
		b.ReportMetric(float64(integration.Percentile(cniAdd, 50).Milliseconds()), "ms-p50-cni-add")
		err = c.Client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=pod-start"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
