//go:build integration && e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/pipeline"
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

// BenchmarkServiceFlows installs a node's whole flow table with 1,000
// Services x 10 endpoints, then with 5,000 x 2, on a real ovs-vswitchd
// (userspace datapath, in a namespace), as the agent's flow sync does
// (diff-flows, then one bundle, keeping learned flows), and prints the
// flows and the time of: the first install, a sync that changes nothing,
// a sync that changes one Service's endpoints; and, for comparison, a
// plain replace-flows that changes nothing. Run: make bench-services.
func BenchmarkServiceFlows(b *testing.B) {
	prerequisites(b)
	l := newLab(b)
	ns := l.netns("-bsvc")
	o := l.startOVS(ns)
	if out, err := o.cmd("ovs-vsctl", "--db=unix:"+o.dir+"/db.sock", "add-br", "br-int", "--", "set", "bridge", "br-int",
		"datapath_type=netdev", "protocols=OpenFlow13"); err != nil {
		b.Fatalf("add-br: %v\n%s", err, out)
	}
	table := ovs.OFCtl{RunDir: o.dir, Bridge: "br-int"}
	ctx := context.Background()
	integration.Eventually(b, 10*time.Second, "the bridge", func() (bool, string) {
		_, err := table.Dump(ctx)
		return err == nil, fmt.Sprint(err)
	})
	gw := pipeline.Gateway{OFPort: 1, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.0.1")}}
	var pods []pipeline.PodPort
	for i := range 30 {
		pods = append(pods, pipeline.PodPort{Name: fmt.Sprintf("p%d", i), Key: fmt.Sprintf("x/p%d", i), OFPort: 2 + i,
			MAC: fmt.Sprintf("0a:00:00:00:01:%02x", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 0, byte(2 + i)})}})
	}
	for _, size := range [][2]int{{1000, 10}, {5000, 2}} {
		st := &pipeline.ServiceTable{}
		ep := 0
		for i := range size[0] {
			p := pipeline.ServicePort{Service: fmt.Sprintf("ns/svc-%d:http", i), VIP: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
				Protocol: pipeline.TCP, Port: 80}
			for range size[1] {
				p.Endpoints = append(p.Endpoints, pipeline.Endpoint{Addr: netip.AddrFrom4([4]byte{100, byte(96 + ep>>16), byte(ep >> 8), byte(ep)}), Port: 8080})
				ep++
			}
			st.Ports = append(st.Ports, p)
		}
		timed := func(flows []string, keep ...int) time.Duration {
			start := time.Now()
			if err := table.Replace(ctx, flows, keep...); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		if err := table.Replace(ctx, nil); err != nil { // start empty
			b.Fatal(err)
		}
		out := pipeline.Render(pipeline.Input{Gateway: gw, Pods: pods, Services: st})
		install := timed(out.Flows, pipeline.LearnedTables...)
		noop := timed(out.Flows, pipeline.LearnedTables...)
		plain := timed(out.Flows)
		st.Ports[size[0]/2].Endpoints[0].Addr = netip.MustParseAddr("100.127.255.254")
		changed := pipeline.Render(pipeline.Input{Gateway: gw, Pods: pods, Services: st})
		one := timed(changed.Flows, pipeline.LearnedTables...)
		got, err := table.Dump(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != len(changed.Flows) {
			b.Fatalf("%d flows installed, want %d", len(got), len(changed.Flows))
		}
		fmt.Printf("service flows on OVS %d x %d endpoints: %d flows (%d the service stage's); first install %s, sync with no change %s "+
			"(plain replace-flows %s), one Service's endpoint changed %s\n",
			size[0], size[1], len(out.Flows), out.Services.Flows, install.Round(time.Millisecond), noop.Round(time.Millisecond),
			plain.Round(time.Millisecond), one.Round(time.Millisecond))
	}
}
