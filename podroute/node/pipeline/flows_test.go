package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

func TestPipeline(t *testing.T) {
	gw4 := Gateway{OFPort: 2, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1")}}
	gwDual := gw4
	gwDual.IPs = append(gwDual.IPs, netip.MustParseAddr("fd00:100:96:1::1"))
	pod := PodPort{Name: "t1rabc", OFPort: 5, MAC: "0a:00:00:00:00:05", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.5")}}
	dualPod := pod
	dualPod.IPs = append(dualPod.IPs, netip.MustParseAddr("fd00:100:96:1::5"))
	cases := []struct {
		name      string
		gw        Gateway
		pods      []PodPort
		wantCount int
		want      []string // substrings that must each match some flow
		notWant   []string
	}{
		{"IPv4 gateway only", gw4, nil, NodeFlows, []string{
			"table=0,priority=200,in_port=2,ip actions=goto_table:1",
			"table=30,priority=200,arp,arp_op=1,arp_tpa=100.96.1.1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:01->eth_src",
			"table=20,priority=100,in_port=2,ip actions=drop",
			"table=20,priority=90,ip actions=set_field:0a:00:00:00:00:01->eth_dst,output:2",
		}, []string{"ipv6_", "icmp6"}},
		{"one pod: spoof guard, ARP answer, forward", gw4, []PodPort{pod}, NodeFlows + FlowsPerPod, []string{
			"table=0,priority=190,in_port=5,dl_src=0a:00:00:00:00:05,ip,nw_src=100.96.1.5 actions=goto_table:1",
			"table=0,priority=190,in_port=5,dl_src=0a:00:00:00:00:05,arp,arp_spa=100.96.1.5,arp_sha=0a:00:00:00:00:05 actions=goto_table:30",
			"table=30,priority=190,arp,arp_op=1,arp_tpa=100.96.1.5",
			"table=20,priority=200,ip,nw_dst=100.96.1.5 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:00:00:00:00:05->eth_dst,output:5",
		}, nil},
		{"a port not built yet gets no flows", gw4, []PodPort{{Name: "x", OFPort: 0, MAC: "0a:00:00:00:00:09", IPs: dualPod.IPs}}, NodeFlows, nil, []string{"0a:00:00:00:00:09"}},
		{"IPv6 on an IPv4-only node is ignored", gw4, []PodPort{dualPod}, NodeFlows + FlowsPerPod, nil, []string{"fd00"}},
		{"dual-stack gateway: solicitations from the node, ND answer as a router", gwDual, nil, DualStackNodeFlows, []string{
			"table=0,priority=210,in_port=2,icmp6,icmp_type=135 actions=goto_table:30",
			"table=0,priority=200,in_port=2,ipv6 actions=goto_table:1",
			"table=30,priority=200,icmp6,icmp_type=135,nd_target=fd00:100:96:1::1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:01->eth_src," +
				"move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:fd00:100:96:1::1->ipv6_src,set_field:0a:00:00:00:00:01->nd_sll,set_field:136->icmpv6_type,set_field:0->icmpv6_code,goto_table:31",
			"table=31,priority=200,icmp6,icmp_type=136,nd_target=fd00:100:96:1::1 actions=set_field:0a:00:00:00:00:01->nd_tll,set_field:0xe0000000->nd_reserved,set_field:2->nd_options_type,IN_PORT",
			"table=20,priority=100,in_port=2,ipv6 actions=drop",
			"table=20,priority=90,ipv6 actions=set_field:0a:00:00:00:00:01->eth_dst,output:2",
		}, nil},
		{"dual-stack pod", gwDual, []PodPort{dualPod}, DualStackNodeFlows + FlowsPerDualStackPod, []string{
			"table=0,priority=195,in_port=5,dl_src=0a:00:00:00:00:05,icmp6,ipv6_src=fe80::/10,icmp_type=135 actions=goto_table:30",
			"table=0,priority=195,in_port=5,dl_src=0a:00:00:00:00:05,icmp6,ipv6_src=fd00:100:96:1::5,icmp_type=135 actions=goto_table:30",
			"table=0,priority=190,in_port=5,dl_src=0a:00:00:00:00:05,ipv6,ipv6_src=fd00:100:96:1::5 actions=goto_table:1",
			"table=30,priority=190,icmp6,icmp_type=135,nd_target=fd00:100:96:1::5 actions=",
			"set_field:0x60000000->nd_reserved",
			"table=20,priority=200,ipv6,ipv6_dst=fd00:100:96:1::5 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:00:00:00:00:05->eth_dst,output:5",
		}, nil},
		{"IPv4-only pod on a dual-stack node", gwDual, []PodPort{pod}, DualStackNodeFlows + FlowsPerPod, nil, []string{"fe80::/10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows := Pipeline(tc.gw, tc.pods)
			all := strings.Join(flows, "\n")
			if len(flows) != tc.wantCount {
				t.Errorf("%d flows, want %d:\n%s", len(flows), tc.wantCount, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no flow containing %q in:\n%s", w, all)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(all, nw) {
					t.Errorf("a flow contains %q:\n%s", nw, all)
				}
			}
			if again := Pipeline(tc.gw, tc.pods); strings.Join(again, "\n") != all {
				t.Error("Pipeline is not deterministic")
			}
		})
	}
}

func TestPodPorts(t *testing.T) {
	ports := []ovs.Port{
		{Name: "t1r-gw0", OFPort: 1, ExternalIDs: map[string]string{KeyGateway: "true", KeyIPs: "100.96.1.1"}},
		{Name: "good", OFPort: 2, ExternalIDs: map[string]string{KeyContainerID: "c1", KeyIPs: "100.96.1.2", KeyMAC: "0A:00:00:00:00:02"}},
		{Name: "badip", OFPort: 3, ExternalIDs: map[string]string{KeyContainerID: "c2", KeyIPs: "100.96.1.x", KeyMAC: "0a:00:00:00:00:03"}},
		{Name: "badmac", OFPort: 4, ExternalIDs: map[string]string{KeyContainerID: "c3", KeyIPs: "100.96.1.4", KeyMAC: "0a:00:00:00:00:04,actions=flood"}},
		{Name: "foreign", OFPort: 5},
	}
	pods, bad := PodPorts(ports)
	if len(pods) != 1 || pods[0].Name != "good" || pods[0].MAC != "0a:00:00:00:00:02" {
		t.Fatalf("pods = %+v", pods)
	}
	if strings.Join(bad, ",") != "badip,badmac" {
		t.Fatalf("bad = %v", bad)
	}
	gw, err := gatewayOf(ports)
	if err == nil {
		t.Fatalf("a gateway without a MAC was accepted: %+v", gw)
	}
	ports[0].MAC = "0a:00:00:00:00:01"
	if gw, err = gatewayOf(ports); err != nil || gw.OFPort != 1 || gw.IPs[0].String() != "100.96.1.1" {
		t.Fatalf("gateway = %+v, %v", gw, err)
	}
}

// Policy rules of the node's pods go into the pipeline's policy stage; a
// pod whose port has no pod identity gets none.
func TestPipelineWithPolicy(t *testing.T) {
	gw := Gateway{OFPort: 2, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1")}}
	a := PodPort{Name: "t1ra", Key: "x/a", OFPort: 5, MAC: "0a:00:00:00:00:05", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.5")}}
	b := PodPort{Name: "t1rb", OFPort: 6, MAC: "0a:00:00:00:00:06", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.6")}}
	ref := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: "x", Name: "deny"}
	pol := &rules.Set{Isolated: [2]map[string][]rules.PolicyRef{{"x/a": {ref}, "x/b": {ref}}, {}}}
	flows, stage := PipelineWithPolicy(gw, []PodPort{a, b}, pol)
	if got, want := len(flows), NodeFlows+2*FlowsPerPod+1; got != want {
		t.Fatalf("%d flows, want %d (one isolation drop):\n%s", got, want, strings.Join(flows, "\n"))
	}
	all := strings.Join(flows, "\n")
	if !strings.Contains(all, "table=14,priority=100,") || !strings.Contains(all, "ip,nw_dst=100.96.1.5 actions=drop") {
		t.Fatalf("no ingress isolation drop for x/a:\n%s", all)
	}
	if strings.Contains(all, "nw_dst=100.96.1.6 actions=drop") {
		t.Fatal("a port without pod identity got policy flows")
	}
	if len(stage.Counters) != 1 {
		t.Fatalf("counters %v", stage.Counters)
	}
	if base := Pipeline(gw, []PodPort{a, b}); len(base) != NodeFlows+2*FlowsPerPod {
		t.Fatalf("without policy: %d flows", len(base))
	}
}
