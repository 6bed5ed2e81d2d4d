package pipeline

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs"
)

var (
	svcGW = Gateway{OFPort: 1, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1"), netip.MustParseAddr("fd00:100:96:1::1")}}
	podA  = PodPort{Name: "a", Key: "x/a", OFPort: 2, MAC: "0a:00:00:00:00:02", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.2"), netip.MustParseAddr("fd00:100:96:1::2")}}
)

func ep(s string, port uint16) Endpoint { return Endpoint{Addr: netip.MustParseAddr(s), Port: port} }

func serviceFlows(t *testing.T, flows []string) []string {
	t.Helper()
	var out []string
	for _, f := range flows {
		for _, table := range []int{tableServiceLB, tableEndpointSelect, tableAffinityLearn, tableEndpointDNAT} {
			if strings.HasPrefix(f, fmt.Sprintf("table=%d,priority=200,", table)) {
				out = append(out, f)
			}
		}
	}
	return out
}

// One Service port with two endpoints: the exact flows, as OVS reads them
// (ovs-ofctl parse-flows accepted each form; the e2e test runs them).
func TestServiceFlowsGolden(t *testing.T) {
	st := &ServiceTable{Ports: []ServicePort{{Service: "x/s:http", VIP: netip.MustParseAddr("100.64.0.10"), Protocol: TCP, Port: 80,
		Endpoints: []Endpoint{ep("100.96.1.2", 8080), ep("100.96.2.7", 8080)}}}}
	out := Render(Input{Gateway: svcGW, Pods: []PodPort{podA}, Services: st})
	id := serviceID(st.Ports[0], map[uint32]bool{0: true})
	cookie, hid := fmt.Sprintf("%#x", CookieServiceTag|uint64(id)), fmt.Sprintf("%x", id)
	want := []string{
		"table=5,priority=200,cookie=" + cookie + ",tcp,nw_dst=100.64.0.10,tp_dst=80 actions=set_field:0x" + hid + "->reg1,multipath(symmetric_l3l4+udp,0,modulo_n,2,0,NXM_NX_REG2[0..15]),goto_table:6",
		"table=6,priority=200,cookie=" + cookie + ",reg1=0x" + hid + ",reg2=0 actions=set_field:0x64600102->reg4,set_field:8080->reg3,goto_table:8",
		"table=6,priority=200,cookie=" + cookie + ",reg1=0x" + hid + ",reg2=1 actions=set_field:0x64600207->reg4,set_field:8080->reg3,goto_table:8",
		"table=8,priority=200,cookie=0x7473000000000000,tcp,reg4=0x64600102,reg3=8080 actions=ct(commit,table=9,zone=65000,nat(dst=100.96.1.2:8080),exec(load:0x1->NXM_NX_CT_MARK[1]))",
		"table=8,priority=200,cookie=0x7473000000000000,tcp,reg4=0x64600207,reg3=8080 actions=ct(commit,table=9,zone=65000,nat(dst=100.96.2.7:8080),exec(load:0x1->NXM_NX_CT_MARK[1]))",
	}
	got := serviceFlows(t, out.Flows)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("service flows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out.Services.Ports != 1 || out.Services.Endpoints != 2 || out.Services.Flows != 5 {
		t.Fatalf("stats %+v", out.Services)
	}
	if len(out.Flows) != DualStackNodeFlows+FlowsPerDualStackPod+5 {
		t.Fatalf("%d flows, want the node's, the pod's and 5", len(out.Flows))
	}
	// New connections from pods go through the stage; the gateway's do not.
	all := strings.Join(out.Flows, "\n")
	for _, w := range []string{
		"table=3,priority=100,cookie=0x7470000000000000,ct_state=+new+trk actions=resubmit(,4),resubmit(,5)",
		"table=3,priority=110,cookie=0x7470000000000000,ct_state=+new+trk,in_port=1 actions=goto_table:9",
		"table=17,priority=200,in_port=2,ip,nw_src=100.96.1.2,nw_dst=100.96.1.2 actions=load:0x1->NXM_NX_REG0[0],ct(commit,table=20,zone=65001,nat(src=169.254.0.253))",
		"table=1,priority=200,ip,nw_dst=169.254.0.253 actions=load:0x1->NXM_NX_REG0[0],ct(table=2,zone=65001,nat)",
		"table=20,priority=300,reg0=0x1/0x1,ip actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:01->eth_src,IN_PORT",
		"table=20,priority=250,reg0=0x2/0x2,ip actions=set_field:0a:00:00:00:00:01->eth_dst,output:1",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("no flow %s", w)
		}
	}
}

// Flows per entry: one to match the VIP, one per endpoint, one more with
// affinity; one DNAT per distinct endpoint, shared between Services.
func TestServiceFlowCounts(t *testing.T) {
	shared := ep("100.96.2.7", 8080)
	st := &ServiceTable{Ports: []ServicePort{
		{Service: "x/s:http", VIP: netip.MustParseAddr("100.64.0.10"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{shared, ep("100.96.2.8", 8080)}},
		{Service: "x/t:http", VIP: netip.MustParseAddr("100.64.0.11"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{shared}, AffinityTimeout: 100000},
		{Service: "x/t:dns", VIP: netip.MustParseAddr("100.64.0.11"), Protocol: UDP, Port: 53, Endpoints: []Endpoint{ep("100.96.2.7", 53)}},
		{Service: "x/v6:http", VIP: netip.MustParseAddr("2001:db8:64::11"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{ep("2001:db8:96:2::7", 8080)}},
		{Service: "x/sctp:s", VIP: netip.MustParseAddr("100.64.0.12"), Protocol: SCTP, Port: 9, Endpoints: []Endpoint{ep("100.96.2.7", 9)}},
		{Service: "x/none:http", VIP: netip.MustParseAddr("100.64.0.13"), Protocol: TCP, Port: 80},
		{Service: "x/mixed:http", VIP: netip.MustParseAddr("100.64.0.14"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{ep("2001:db8:96:2::7", 8080)}},
	}}
	dual := Render(Input{Gateway: svcGW, Services: st})
	// s: 1+2, t: 1+1+1, dns: 1+1, v6: 1+1; DNAT: shared, .8, .7:53 (udp), v6 = 4
	if want := 3 + 3 + 2 + 2 + 4; dual.Services.Flows != want || dual.Services.Ports != 4 {
		t.Fatalf("dual-stack: %+v, want %d flows for 4 ports", dual.Services, want)
	}
	if len(dual.Services.Problems) != 2 {
		t.Errorf("want problems for SCTP and the endpoint of the other family: %v", dual.Services.Problems)
	}
	if !strings.Contains(strings.Join(dual.Flows, "\n"), "idle_timeout=65535,") {
		t.Error("an affinity longer than OVS keeps is not capped at 65535 s")
	}
	v4 := svcGW
	v4.IPs = v4.IPs[:1]
	if out := Render(Input{Gateway: v4, Services: st}); out.Services.Ports != 3 || strings.Contains(strings.Join(out.Flows, "\n"), "2001:db8") {
		t.Fatalf("an IPv4-only node: %+v", out.Services)
	}
}

// A Service's flows do not change when other Services come and go: a sync
// changes only what changed (and keeps the others' affinity entries).
func TestServiceFlowsStable(t *testing.T) {
	a := ServicePort{Service: "x/a:http", VIP: netip.MustParseAddr("100.64.0.10"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{ep("100.96.2.7", 8080)}, AffinityTimeout: 60}
	b := ServicePort{Service: "x/b:http", VIP: netip.MustParseAddr("100.64.0.9"), Protocol: TCP, Port: 80, Endpoints: []Endpoint{ep("100.96.2.9", 8080)}}
	one := Render(Input{Gateway: svcGW, Services: &ServiceTable{Ports: []ServicePort{a}}}).Flows
	two := Render(Input{Gateway: svcGW, Services: &ServiceTable{Ports: []ServicePort{b, a}}}).Flows
	for _, f := range one {
		if !slices.Contains(two, f) {
			t.Errorf("adding another Service changed %s", f)
		}
	}
}

func TestStaleUDP(t *testing.T) {
	vip, e1, e2 := netip.MustParseAddr("100.64.0.10"), netip.MustParseAddr("100.96.1.5"), netip.MustParseAddr("100.96.2.5")
	client := netip.MustParseAddr("100.96.1.9")
	st := &ServiceTable{Ports: []ServicePort{{Service: "x/dns", VIP: vip, Protocol: UDP, Port: 53, Endpoints: []Endpoint{{e2, 1053}}}}}
	conn := func(proto string, dst netip.Addr, dport uint16, rsrc netip.Addr, rsport uint16, mark uint32) ovs.Conn {
		return ovs.Conn{Proto: proto, Zone: conntrackZone, Mark: mark,
			Orig: ovs.Tuple{Src: client, Dst: dst, SrcPort: 40000, DstPort: dport}, Reply: ovs.Tuple{Src: rsrc, Dst: client, SrcPort: rsport, DstPort: 40000}}
	}
	conns := []ovs.Conn{
		conn("udp", vip, 53, e1, 1053, 3),                                   // to an endpoint that went: stale
		conn("udp", vip, 53, e2, 1053, 3),                                   // to a live endpoint: kept
		conn("udp", vip, 53, vip, 53, 1),                                    // sent to kube-proxy before the table had it: stale
		conn("tcp", vip, 53, e1, 1053, 3),                                   // TCP: kube-proxy leaves it too
		conn("udp", e1, 53, e1, 53, 1),                                      // to a pod, not a Service: kept
		conn("udp", vip, 54, e1, 1053, 3),                                   // a port the table has no longer at all: stale
		conn("udp", vip, 99, e1, 99, 5),                                     // untranslated, not in the table: kept
		conn("udp", netip.MustParseAddr("198.51.100.12"), 30053, e1, 53, 5), // the kernel's NodePort, seen from the gateway: kept
	}
	got := StaleUDP(conns, st)
	want := []ovs.Conn{conns[0], conns[2], conns[5]}
	if !slices.Equal(got, want) {
		t.Fatalf("stale:\n%v\nwant:\n%v", got, want)
	}
	if UDPChanged(st, st) || !UDPChanged(nil, st) || !UDPChanged(st, &ServiceTable{}) {
		t.Fatal("UDPChanged")
	}
}
