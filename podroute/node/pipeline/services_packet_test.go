package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/policy/rules"
)

var (
	vip    = a("100.64.0.10")
	vip6   = a("2001:db8:64::10")
	p2, p3 = a("100.96.1.2"), a("100.96.1.3")
	p4     = a("100.96.1.4")
)

func tcp(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, flags string) pkt {
	return pkt{proto: "tcp", src: src, sport: sport, dst: dst, dport: dport, flags: flags}
}

func udp(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) pkt {
	return pkt{proto: "udp", src: src, sport: sport, dst: dst, dport: dport}
}

func oneService(addr netip.Addr, proto Protocol, eps ...Endpoint) *ServiceTable {
	return &ServiceTable{Ports: []ServicePort{{Service: "x/s:p", VIP: addr, Protocol: proto, Port: 80, Endpoints: eps}}}
}

// A pod's connection to a Service whose endpoint is on its node: DNATed
// in the bridge, delivered with the client's own address, and the reply
// un-DNATed back to the client; the handshake completes.
func TestPacketsServiceSameNode(t *testing.T) {
	d := newDP(t)
	d.install(Input{Services: oneService(vip, TCP, Endpoint{p3, 8080})})
	d.send(2, tcp(p2, 40000, vip, 80, "syn"))
	d.expect(3, &pkt{proto: "tcp", src: p2, sport: 40000, dst: p3, dport: 8080, flags: "syn"})
	d.send(3, tcp(p3, 8080, p2, 40000, "syn|ack"))
	d.expect(2, &pkt{proto: "tcp", src: vip, sport: 80, dst: p2, dport: 40000, flags: "syn|ack"})
	d.send(2, tcp(p2, 40000, vip, 80, "ack"))
	d.expect(3, &pkt{proto: "tcp", src: p2, sport: 40000, dst: p3, dport: 8080, flags: "ack"})
}

// A remote endpoint: the translated packet goes to the gateway, for the
// kernel to route unchanged.
func TestPacketsServiceRemoteEndpoint(t *testing.T) {
	d := newDP(t)
	remote := a("100.96.2.7")
	d.install(Input{Services: oneService(vip, UDP, Endpoint{remote, 53})})
	d.send(2, udp(p2, 40000, vip, 80))
	d.expect(1, &pkt{proto: "udp", src: p2, sport: 40000, dst: remote, dport: 53})
	d.send(1, udp(remote, 53, p2, 40000)) // the reply, back from the other node
	d.expect(2, &pkt{proto: "udp", src: vip, sport: 80, dst: p2, dport: 40000})
}

// Hairpin, both families: the pod reaches itself from the hairpin address,
// and its reply comes back from the Service.
func TestPacketsHairpin(t *testing.T) {
	d := newDP(t)
	p3v6 := a("2001:db8:96:1::3")
	d.install(Input{Services: &ServiceTable{Ports: []ServicePort{
		{Service: "x/s:p", VIP: vip, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{p3, 8080}}},
		{Service: "x/s:p", VIP: vip6, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{p3v6, 8080}}}}}})
	for _, c := range []struct{ client, svc, snat netip.Addr }{{p3, vip, HairpinSNAT4}, {p3v6, vip6, HairpinSNAT6}} {
		d.send(3, tcp(c.client, 40000, c.svc, 80, "syn"))
		d.expect(3, &pkt{proto: "tcp", src: c.snat, sport: 40000, dst: c.client, dport: 8080, flags: "syn"})
		d.send(3, tcp(c.client, 8080, c.snat, 40000, "syn|ack"))
		d.expect(3, &pkt{proto: "tcp", src: c.svc, sport: 80, dst: c.client, dport: 40000, flags: "syn|ack"})
	}
}

// A connection the kernel translated (a NodePort to a local endpoint; the
// client is a local pod): its reply goes back to the gateway, where the
// kernel un-translates it, not straight to the client.
func TestPacketsRepliesOfKernelTranslationGoToTheGateway(t *testing.T) {
	d := newDP(t)
	d.install(Input{})
	d.send(1, tcp(p2, 40000, p3, 8080, "syn")) // DNATed by the kernel, in through the gateway
	d.expect(3, &pkt{proto: "tcp", src: p2, sport: 40000, dst: p3, dport: 8080, flags: "syn"})
	d.send(3, tcp(p3, 8080, p2, 40000, "syn|ack"))
	d.expect(1, &pkt{proto: "tcp", src: p3, sport: 8080, dst: p2, dport: 40000, flags: "syn|ack"})
	// A pod's own connection to a local pod is answered directly, as before.
	d.send(2, tcp(p2, 40001, p3, 8080, "syn"))
	d.expect(3, &pkt{proto: "tcp", src: p2, sport: 40001, dst: p3, dport: 8080, flags: "syn"})
	d.send(3, tcp(p3, 8080, p2, 40001, "syn|ack"))
	d.expect(2, &pkt{proto: "tcp", src: p3, sport: 8080, dst: p2, dport: 40001, flags: "syn|ack"})
}

// egressOnlyTo isolates x/p2's egress but for TCP 8080 and UDP 80 to peer.
func egressOnlyTo(peer netip.Addr) *rules.Set {
	ref := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: "x", Name: "only"}
	return &rules.Set{Rules: []rules.Rule{{Policy: ref, Tier: rules.TierNetworkPolicy, Direction: rules.Egress, Action: rules.Accept,
		Pods: []string{"x/p2"}, Peers: []netip.Prefix{netip.PrefixFrom(peer, 32)},
		Ports: []rules.PortRange{{Protocol: rules.TCP, Start: 8080, End: 8080}, {Protocol: rules.UDP, Start: 80, End: 80}}}},
		Isolated: [2]map[string][]rules.PolicyRef{{}, {"x/p2": {ref}}}}
}

// Policy judges the endpoint: egress allowed to p4 reaches p4 through its
// Service and is blocked through p3's; retransmissions of the denied
// connection are dropped too, and a packet shaped as its reply never
// reaches the client (a control shows the same packet arrives when no
// denied connection precedes it).
func TestPacketsPolicyJudgesTheEndpoint(t *testing.T) {
	d := newDP(t)
	vipB := a("100.64.0.11")
	d.install(Input{Policy: egressOnlyTo(p4), Services: &ServiceTable{Ports: []ServicePort{
		{Service: "x/to-p4:p", VIP: vip, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{p4, 8080}}},
		{Service: "x/to-p3:p", VIP: vipB, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{p3, 8080}}},
		{Service: "x/to-p3:u", VIP: vipB, Protocol: UDP, Port: 80, Endpoints: []Endpoint{{p3, 80}}}}}})
	d.send(2, tcp(p2, 40000, vip, 80, "syn"))
	d.expect(4, &pkt{proto: "tcp", src: p2, sport: 40000, dst: p4, dport: 8080, flags: "syn"})
	for range 3 { // the SYN and its retransmissions
		d.send(2, tcp(p2, 40001, vipB, 80, "syn"))
		d.expect(0, nil)
	}
	d.send(3, tcp(p3, 8080, p2, 40001, "syn|ack"))
	d.expect(0, nil)
	for range 3 { // UDP: the third packet of a flow is "established"
		d.send(2, udp(p2, 40002, vipB, 80))
		d.expect(0, nil)
	}
	d.send(3, udp(p3, 80, p2, 40002))
	d.expect(0, nil)
	d.send(3, udp(p3, 80, p2, 40003)) // control: no denied connection before it
	d.expect(2, &pkt{proto: "udp", src: p3, sport: 80, dst: p2, dport: 40003})
}

// A pod whose egress is isolated still answers what others open to it:
// replies of allowed connections are not judged, from a local pod or from
// the gateway (regression seen in the NetworkPolicy matrix).
func TestPacketsRepliesOfAnIsolatedPodPass(t *testing.T) {
	d := newDP(t)
	d.install(Input{Policy: egressOnlyTo(p4)})
	remote := a("100.96.2.9")
	d.send(1, tcp(remote, 40000, p2, 80, "syn"))
	d.expect(2, &pkt{proto: "tcp", src: remote, sport: 40000, dst: p2, dport: 80, flags: "syn"})
	d.send(2, tcp(p2, 80, remote, 40000, "syn|ack"))
	d.expect(1, &pkt{proto: "tcp", src: p2, sport: 80, dst: remote, dport: 40000, flags: "syn|ack"})
	d.send(3, tcp(p3, 40000, p2, 81, "syn"))
	d.expect(2, &pkt{proto: "tcp", src: p3, sport: 40000, dst: p2, dport: 81, flags: "syn"})
	d.send(2, tcp(p2, 81, p3, 40000, "syn|ack"))
	d.expect(3, &pkt{proto: "tcp", src: p2, sport: 81, dst: p3, dport: 40000, flags: "syn|ack"})
	d.send(3, udp(p3, 40001, p2, 81))
	d.expect(2, &pkt{proto: "udp", src: p3, sport: 40001, dst: p2, dport: 81})
	d.send(2, udp(p2, 81, p3, 40001))
	d.expect(3, &pkt{proto: "udp", src: p2, sport: 81, dst: p3, dport: 40001})
}

// Session affinity: a client keeps its endpoint across connections, a
// flow sync keeps the learned entry, and when that endpoint goes the
// client gets another; without affinity connections spread.
func TestPacketsSessionAffinity(t *testing.T) {
	d := newDP(t)
	both := []Endpoint{{p3, 8080}, {p4, 8080}}
	sticky := &ServiceTable{Ports: []ServicePort{{Service: "x/s:p", VIP: vip, Protocol: TCP, Port: 80, Endpoints: both, AffinityTimeout: 300}}}
	d.install(Input{Services: sticky})
	endpointOf := func(sport uint16) netip.Addr {
		t.Helper()
		d.send(2, tcp(p2, sport, vip, 80, "syn"))
		d.settle()
		var got []pkt
		for port := 1; port <= dpPorts; port++ {
			got = append(got, d.out(port)...)
		}
		if len(got) != 1 {
			t.Fatalf("connection from port %d: %v", sport, got)
		}
		return got[0].dst
	}
	first := endpointOf(41000)
	for sport := uint16(41001); sport < 41008; sport++ {
		if ep := endpointOf(sport); ep != first {
			t.Fatalf("with affinity, connection %d went to %s, the first to %s", sport, ep, first)
		}
	}
	learned := d.cmd("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "unix:"+d.sw.Dir+"/br.mgmt", "table=4")
	if !strings.Contains(learned, "idle_timeout=300") || !strings.Contains(learned, "nw_src=100.96.1.2") {
		t.Fatalf("no learned affinity entry:\n%s", learned)
	}
	// A sync, and another Service added: the entry stays.
	d.install(Input{Services: sticky})
	withOther := &ServiceTable{Ports: append([]ServicePort{{Service: "x/t:p", VIP: a("100.64.0.12"), Protocol: UDP, Port: 53,
		Endpoints: []Endpoint{{p4, 53}}}}, sticky.Ports...)}
	d.install(Input{Services: withOther})
	if ep := endpointOf(41010); ep != first {
		t.Fatalf("after flow syncs, the client went to %s, its affinity was %s", ep, first)
	}
	// Its endpoint goes: the next connection gets the other.
	var rest []Endpoint
	for _, e := range both {
		if e.Addr != first {
			rest = append(rest, e)
		}
	}
	withOther.Ports[1].Endpoints = rest
	d.install(Input{Services: withOther})
	if ep := endpointOf(41011); ep != rest[0].Addr {
		t.Fatalf("its endpoint gone, the client went to %s, want %s", ep, rest[0].Addr)
	}
	// Without affinity, connections from one client spread.
	d.install(Input{Services: &ServiceTable{Ports: []ServicePort{{Service: "x/s:p", VIP: vip, Protocol: TCP, Port: 80, Endpoints: both}}}})
	seen := map[netip.Addr]bool{}
	for sport := uint16(42000); sport < 42016; sport++ {
		seen[endpointOf(sport)] = true
	}
	if len(seen) != 2 {
		t.Fatalf("without affinity 16 connections went only to %v", seen)
	}
}

// The management guard holds after Service translation: a pod's connection
// to a Service whose endpoint is in the management network is dropped, as
// a direct one is, with no policy rules at all (a node starting); the same
// Service with an endpoint elsewhere is translated and forwarded (the
// control), and a pod the guard's own policies exempt gets through.
func TestPacketsManagementGuardJudgesTheEndpoint(t *testing.T) {
	d := newDP(t)
	mgmt := a("203.0.113.5")
	g := Guard{CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}}
	vipB := a("100.64.0.11")
	services := &ServiceTable{Ports: []ServicePort{
		{Service: "x/vcenter:https", VIP: vip, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{mgmt, 443}}},
		{Service: "x/web:http", VIP: vipB, Protocol: TCP, Port: 80, Endpoints: []Endpoint{{a("100.96.2.7"), 8080}}}}}
	d.install(Input{Guard: g, Services: services})
	d.send(2, tcp(p2, 40000, vip, 80, "syn"))
	d.expect(0, nil)
	d.send(2, tcp(p2, 40001, mgmt, 443, "syn"))
	d.expect(0, nil)
	d.send(2, tcp(p2, 40002, vipB, 80, "syn"))
	d.expect(1, &pkt{proto: "tcp", src: p2, sport: 40002, dst: a("100.96.2.7"), dport: 8080, flags: "syn"})

	// x/p3 exempt by the guard's own allow policy: its Service connection passes.
	exempt := &rules.Set{Node: "n1", Rules: []rules.Rule{{Policy: rules.PolicyRef{Kind: rules.KindClusterNetworkPolicy, Name: "t1route-management-guard-allow-1"},
		Tier: rules.TierAdmin, Direction: rules.Egress, Action: rules.Pass, Pods: []string{"x/p3"}, Peers: g.CIDRs, AnyPort: true}}}
	d.install(Input{Guard: g, Services: services, Policy: exempt})
	d.send(3, tcp(p3, 40003, vip, 80, "syn"))
	d.expect(1, &pkt{proto: "tcp", src: p3, sport: 40003, dst: mgmt, dport: 443, flags: "syn"})
}
