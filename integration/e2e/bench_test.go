//go:build integration && e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/ovs"
)

// BenchmarkPodAttach attaches 50 pods to one node, one after another, as a
// runtime would, and measures for each the time from CNI ADD to the first
// packet the pod gets forwarded (a ping of its gateway through OVS), and the
// flows each pod adds. Run: make bench-ovs.
func BenchmarkPodAttach(b *testing.B) {
	prerequisites(b)
	b.Run("ipv4", func(b *testing.B) { benchAttach(b, false) })
	b.Run("dual-stack", func(b *testing.B) { benchAttach(b, true) })
}

func benchAttach(b *testing.B, dual bool) {
	const pods = 50
	w := &world{t: b, lab: newLab(b), dual: dual}
	w.bin = integration.BuildBinaries(b)
	w.cluster = integration.StartCluster(b)
	w.buildNetwork()
	w.nodes = w.nodes[:1]
	w.startNodes()
	n := w.nodes[0]
	table := ovs.OFCtl{RunDir: n.ovs.dir, Bridge: "br-int"}
	ctx := context.Background()
	base, err := table.Dump(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var addOnly, firstPacket []time.Duration
		for i := range pods {
			p := &pod{name: fmt.Sprintf("bench-%d-%d", it, i), node: n, containerID: fmt.Sprintf("bench%d%d%s", it, i, w.lab.prefix)}
			p.ns = w.lab.netns(fmt.Sprintf("-b%d-%d", it, i))
			start := time.Now()
			res, err := n.cni.add(ctx, p.containerID, p.ns, p.name)
			if err != nil {
				b.Fatalf("ADD %s: %v", p.name, err)
			}
			addOnly = append(addOnly, time.Since(start))
			r, _ := current.NewResultFromResult(res)
			var gw string
			for _, c := range r.IPs {
				if c.Address.IP.To4() != nil {
					gw = c.Gateway.String() // the first IPv4 packet, comparable across modes
				}
			}
			for {
				if _, err := inNetns(p.ns, "ping", "-n", "-c", "1", "-W", "1", gw); err == nil {
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("pod %s never reached its gateway", p.name)
				}
			}
			firstPacket = append(firstPacket, time.Since(start))
		}
		b.StopTimer()
		flows, err := table.Dump(ctx)
		if err != nil {
			b.Fatal(err)
		}
		perPod := float64(len(flows)-len(base)) / pods
		mode := "IPv4"
		if dual {
			mode = "dual-stack"
		}
		fmt.Printf("pod attach, %s, over %d pods (userspace OVS, 2 cores): ADD->first packet p50 %s p99 %s; ADD alone p50 %s p99 %s; flows per pod %.1f (%d flows total)\n",
			mode, pods, integration.Percentile(firstPacket, 50), integration.Percentile(firstPacket, 99), integration.Percentile(addOnly, 50), integration.Percentile(addOnly, 99), perPod, len(flows))
		b.ReportMetric(float64(integration.Percentile(firstPacket, 50).Milliseconds()), "ms-p50-first-packet")
		b.ReportMetric(float64(integration.Percentile(firstPacket, 99).Milliseconds()), "ms-p99-first-packet")
		b.ReportMetric(perPod, "flows/pod")
		b.StartTimer()
	}
}
