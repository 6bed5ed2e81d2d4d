package datapath

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPipeline(t *testing.T) {
	gw := Gateway{OFPort: 2, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1"), netip.MustParseAddr("fd00::1")}}
	pod := PodPort{Name: "t1rabc", OFPort: 5, MAC: "0a:00:00:00:00:05", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.5")}}
	cases := []struct {
		name      string
		pods      []PodPort
		wantCount int
		want      []string // substrings that must each match some flow
		notWant   []string
	}{
		{"gateway only", nil, 8, []string{
			"table=0,priority=200,in_port=2,ip actions=goto_table:20",
			"table=10,priority=200,arp,arp_op=1,arp_tpa=100.96.1.1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:01->eth_src",
			"table=20,priority=100,in_port=2,ip actions=drop",
			"table=20,priority=90,ip actions=set_field:0a:00:00:00:00:01->eth_dst,output:2",
		}, []string{"fd00::1"}},
		{"one pod: spoof guard, ARP answer, forward", []PodPort{pod}, 8 + FlowsPerPod, []string{
			"table=0,priority=190,in_port=5,dl_src=0a:00:00:00:00:05,ip,nw_src=100.96.1.5 actions=goto_table:20",
			"table=0,priority=190,in_port=5,dl_src=0a:00:00:00:00:05,arp,arp_spa=100.96.1.5,arp_sha=0a:00:00:00:00:05 actions=goto_table:10",
			"table=10,priority=190,arp,arp_op=1,arp_tpa=100.96.1.5",
			"table=20,priority=200,ip,nw_dst=100.96.1.5 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:00:00:00:00:05->eth_dst,output:5",
		}, nil},
		{"a port not built yet gets no flows", []PodPort{{Name: "x", OFPort: 0, MAC: "0a:00:00:00:00:09", IPs: pod.IPs}}, 8, nil, []string{"0a:00:00:00:00:09"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows := Pipeline(gw, tc.pods)
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
			if again := Pipeline(gw, tc.pods); strings.Join(again, "\n") != all {
				t.Error("Pipeline is not deterministic")
			}
		})
	}
}

func TestPodPorts(t *testing.T) {
	ports := []Port{
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

func TestGatewayAddrsAndConfList(t *testing.T) {
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}
	gws := GatewayAddrs(cidrs)
	if len(gws) != 1 || gws[0].String() != "100.96.1.1/24" {
		t.Fatalf("gateway addresses = %v", gws)
	}
	cfg := AgentConfig{DatapathType: "netdev"}
	cfg.Defaults()
	b, err := ConfList(cfg, cidrs, gws)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cniVersion": "1.0.0"`, `"type": "t1route-cni"`, `"subnet": "100.96.1.0/24"`, `"gateway": "100.96.1.1"`,
		`"disableTxChecksumOffload": true`, `"type": "host-local"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
}
