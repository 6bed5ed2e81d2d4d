package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs/ovstest"
	"github.com/t1route/t1route/podroute/node/pipeline"
)

// A node's flow table, policies and Services changing under it, installed the way the
// agent installs it (diff-flows, then one bundle of strict deletes and
// adds, the learned table kept): after every change, a real ovs-vswitchd
// holds exactly the flows rendered, nothing stale and nothing missing.
func TestReplaceConvergesOnRealOVS(t *testing.T) {
	sw := ovstest.Start(t, 0)
	table := sw.OFCtl()
	ctx := context.Background()
	gw := pipeline.Gateway{OFPort: testGatewayPort, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1"), netip.MustParseAddr("2001:db8:96:1::1")}}
	scenarios := 25
	if testing.Short() {
		scenarios = 8
	}
	for seed := range uint64(scenarios) {
		w := newRefWorld(rand.New(rand.NewPCG(seed, 14)))
		var pods []pipeline.PodPort
		for _, p := range w.pods {
			if p.Node == "n1" {
				pods = append(pods, pipeline.PodPort{Name: p.Name, Key: p.Key(), OFPort: w.ofports[p.Key()],
					MAC: fmt.Sprintf("0a:00:00:00:01:%02x", w.ofports[p.Key()]), IPs: p.IPs})
			}
		}
		// A Service per pod, with affinity in odd scenarios, both families.
		svcs := &pipeline.ServiceTable{}
		for i, p := range w.pods {
			for _, ip := range p.IPs {
				vip := netip.AddrFrom4([4]byte{100, 64, 0, byte(i + 1)})
				if ip.Is6() {
					vip = netip.MustParseAddr(fmt.Sprintf("2001:db8:64::%x", i+1))
				}
				sp := pipeline.ServicePort{Service: p.Key() + ":dns", VIP: vip, Protocol: pipeline.UDP, Port: 53,
					Endpoints: []pipeline.Endpoint{{Addr: ip, Port: 53}}}
				if seed%2 == 1 {
					sp.AffinityTimeout = 60
				}
				svcs.Ports = append(svcs.Ports, sp)
			}
		}
		out := pipeline.Render(pipeline.Input{Gateway: gw, Pods: pods, Policy: Compile(w.cluster(), "n1"), Services: svcs})
		if err := table.Replace(ctx, out.Flows, pipeline.LearnedTables...); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		file := filepath.Join(t.TempDir(), "flows.txt")
		if err := os.WriteFile(file, []byte(strings.Join(out.Flows, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if diff, err := sw.Cmd("ovs-ofctl", "-O", "OpenFlow13", "--no-names", "diff-flows", "unix:"+sw.Dir+"/"+sw.Bridge+".mgmt", file); err != nil {
			t.Fatalf("seed %d: the switch differs from the %d flows rendered (%v):\n%s", seed, len(out.Flows), err, diff)
		}
	}
}
