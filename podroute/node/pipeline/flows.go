// Package pipeline is the node's OpenFlow pipeline, the one place that
// knows the bridge's tables: the spoof guard, the neighbour responder and
// L3 forwarding (flows.go), the translation of pods' connections to
// Service virtual IPs (services.go) and the policy stage (render.go),
// computed as a pure function of OVSDB state, the node's policy rules and
// its service table, and installed by Sync. The agent calls Sync (for
// itself and for the CNI plugin).
//
// The tables (OpenFlow 1.3), in the order a packet meets them:
//
//	0     classify + spoof guard: the gateway is trusted; a pod port passes
//	      only IPv4/IPv6 and ARP/neighbour solicitations from its own MAC
//	      and IPs (solicitations also from its link-local address); the
//	      rest is dropped.
//	1     un-SNAT of replies to hairpin connections (their own zone).
//	2-3   conntrack with NAT in the pod zone (replies un-translated,
//	      later packets translated again) and its state: replies of
//	      allowed connections go straight to forwarding.
//	4-8   the service stage (services.go): a pod's new connection to a
//	      Service VIP gets an endpoint and is DNATed.
//	10-16 the policy stage (render.go): egress and ingress in three tiers
//	      (ClusterNetworkPolicy Admin, NetworkPolicy, ClusterNetworkPolicy
//	      Baseline), judging the real endpoint, then the commit.
//	17    hairpin SNAT: a pod that reached itself through a Service.
//	20    L3 forwarding: to a local pod by destination IP (MACs rewritten);
//	      from a pod to anywhere else out the gateway; the gateway never
//	      hairpins; replies of connections that entered from the gateway
//	      go back to the gateway (the kernel translated them: only it can
//	      translate their replies back).
//	30-31 ARP and IPv6 neighbour discovery responder: requests for the
//	      gateway or a local pod are answered by the switch; nothing else
//	      is flooded.
//
// Flows are installed in one OpenFlow bundle that changes only the flows
// that differ and keeps the session affinity entries OVS learned: an agent
// restart rebuilds the same table without disturbing running pods.
package pipeline

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// OVSDB external_ids keys on a pod's Interface row (written by the CNI
// plugin, read back to build flows).
const (
	KeyPodNamespace = "t1route-pod-namespace"
	KeyPodName      = "t1route-pod-name"
	KeyContainerID  = "t1route-container-id"
	KeyIfName       = "t1route-ifname"
	KeyIPs          = "t1route-ips"  // comma-separated
	KeyMAC          = "attached-mac" // OVS's own convention
	KeyGateway      = "t1route-gateway"
)

// Flow tables.
const (
	tableClassify        = 0
	tableUnSNAT          = 1
	tableSessionAffinity = 4 // learned flows only, besides its default
	tableServiceLB       = 5
	tableEndpointSelect  = 6
	tableAffinityLearn   = 7
	tableEndpointDNAT    = 8
	tableManagementGuard = 9
	tableHairpinSNAT     = 17
	tableForward         = 20
	tableARP             = 30
	tableNDAdvert        = 31 // finishes neighbour advertisements begun in tableARP
)

// LearnedTables are the tables whose flows OVS adds itself (learn): a flow
// sync keeps them.
var LearnedTables = []int{tableSessionAffinity}

// Table names a table of the pipeline for people.
type Table struct {
	ID         int
	Name, What string
}

// Tables are the pipeline's tables: the flows above use these numbers,
// and `t1route get ovsflows -T NAME` these names.
func Tables() []Table {
	return []Table{
		{tableClassify, "Classifier", "spoof guard: the gateway is trusted; a pod passes only from its own MAC and addresses"},
		{tableUnSNAT, "UnSNAT", "replies to hairpin connections (a pod reaching itself through a Service) un-SNATed in their own zone"},
		{policyTables.Conntrack, "Conntrack", "every IP packet through conntrack with NAT (pod zone): replies un-DNATed, later packets DNATed again"},
		{policyTables.ConntrackState, "ConntrackState", "replies and related packets of allowed connections pass; new connections from pods to the service stage; the rest is evaluated"},
		{tableSessionAffinity, "SessionAffinity", "learned: the endpoint a client had for a Service with ClientIP affinity"},
		{tableServiceLB, "ServiceLB", "a pod's new connection to a Service VIP, protocol and port: the service and a hash of the connection"},
		{tableEndpointSelect, "EndpointSelect", "(service, hash) to the endpoint's address and port"},
		{tableAffinityLearn, "AffinityLearn", "Services with ClientIP affinity learn the endpoint chosen"},
		{tableEndpointDNAT, "EndpointDNAT", "the connection translated to its endpoint (conntrack commit with NAT), then policy"},
		{tableManagementGuard, "ManagementGuard", "the management network (--management-cidr) dropped for every pod but those the guard's own policies exempt, after Service translation, ahead of every policy"},
		{policyTables.EgressAdmin, "EgressAdmin", "ClusterNetworkPolicy Admin tier, egress of local pods"},
		{policyTables.EgressNetworkPolicy, "EgressNetworkPolicy", "NetworkPolicy, egress of local pods"},
		{policyTables.EgressBaseline, "EgressBaseline", "ClusterNetworkPolicy Baseline tier, egress of local pods"},
		{policyTables.IngressAdmin, "IngressAdmin", "ClusterNetworkPolicy Admin tier, ingress to local pods"},
		{policyTables.IngressNetworkPolicy, "IngressNetworkPolicy", "NetworkPolicy, ingress to local pods"},
		{policyTables.IngressBaseline, "IngressBaseline", "ClusterNetworkPolicy Baseline tier, ingress to local pods"},
		{policyTables.Commit, "ConntrackCommit", "allowed new connections committed to conntrack, marked allowed (and from the gateway)"},
		{tableHairpinSNAT, "HairpinSNAT", "a pod that reached itself through a Service: SNAT to the hairpin address, back out its own port"},
		{tableARP, "NeighborResponder", "ARP and IPv6 neighbour solicitations for the gateway and local pods, answered by the switch"},
		{tableNDAdvert, "NDAdvertisement", "finishes the neighbour advertisements begun in NeighborResponder"},
		{tableForward, "L3Forwarding", "to a local pod by destination address; anything else, and replies of connections from the gateway, out the gateway"},
	}
}

// Gateway is the node's side of the bridge.
type Gateway struct {
	OFPort int
	MAC    string
	IPs    []netip.Addr
}

// PodPort is one attached pod as the pipeline needs it.
type PodPort struct {
	Name   string
	Key    string // "namespace/name" of the pod, as policies name it ("" if unknown)
	OFPort int
	MAC    string
	IPs    []netip.Addr
}

// Flow counts, for checks and tests: per pod with one IPv4 address (spoof
// guard IP + ARP, ARP answer, forward, hairpin SNAT), per pod with one IPv4
// and one IPv6 address (adds spoof guard IPv6 + solicitation, link-local
// solicitation, ND answer, forward, hairpin SNAT), and for the node
// (gateway) in either case. The node's counts include the policy stage
// without any policy (conntrack, the tiers' defaults, the node's own
// traffic to its pods) and the service stage without any Service; policies
// and Services add flows of their own (see podroute/policy/rules and
// ServiceStats).
const (
	FlowsPerPod          = 5
	FlowsPerDualStackPod = 12
	NodeFlows            = 13 + ServiceBaseFlows + GuardBaseFlows + BaseFlows + 2
	DualStackNodeFlows   = 23 + ServiceBaseFlows + GuardBaseFlows + BaseFlows + 4
)

// ServiceBaseFlows is the number of flows of the service stage without any
// Service, with the two of the policy stage's ConntrackState that lead to it.
const ServiceBaseFlows = 7 + 2

// The policy stage's tables (between the service stage and the hairpin
// SNAT) and the conntrack zones: pods' connections, and the hairpin SNAT
// of a pod reaching itself.
var policyTables = PolicyTables{Conntrack: 2, ConntrackState: 3, EgressAdmin: 10, EgressNetworkPolicy: 11, EgressBaseline: 12,
	IngressAdmin: 13, IngressNetworkPolicy: 14, IngressBaseline: 15, Commit: 16, Next: tableHairpinSNAT,
	Services: tableSessionAffinity, ServicesNext: tableServiceLB, Replies: tableForward, Guard: tableManagementGuard}

const (
	conntrackZone = 65000
	hairpinZone   = 65001
)

// Input is everything the bridge's flow table is computed from.
type Input struct {
	Gateway Gateway
	Pods    []PodPort
	// Policy is the node's policy rules (nil: none).
	Policy *rules.Set
	// Services is the service table (nil: none yet; pods' connections to
	// Services then go to the gateway untranslated, for kube-proxy).
	Services *ServiceTable
	// Guard is the management-network guard (none: no CIDRs).
	Guard Guard
}

// Output is the complete flow table and what it holds.
type Output struct {
	Flows    []string // sorted, ovs-ofctl syntax
	Policy   *FlowSet // the policy stage, for its counters
	Services ServiceStats
}

// Pipeline returns the complete flow table of the bridge for this gateway
// and these pods, without policies or Services, sorted, in ovs-ofctl
// syntax. Pure.
func Pipeline(gw Gateway, pods []PodPort) []string {
	return Render(Input{Gateway: gw, Pods: pods}).Flows
}

// PipelineWithPolicy is Render without Services.
func PipelineWithPolicy(gw Gateway, pods []PodPort, pol *rules.Set) ([]string, *FlowSet) {
	out := Render(Input{Gateway: gw, Pods: pods, Policy: pol})
	return out.Flows, out.Policy
}

// Render returns the complete flow table of the bridge. Pure. IPv6 flows
// exist only when the gateway has an IPv6 address. Every IP packet goes
// through conntrack and the policy stage, even without policies, so that
// connections are tracked before a policy arrives.
func Render(in Input) Output {
	gw, pods := in.Gateway, in.Pods
	var flows []string
	add := func(format string, args ...any) { flows = append(flows, fmt.Sprintf(format, args...)) }

	add("table=%d,priority=200,in_port=%d,ip actions=goto_table:%d", tableClassify, gw.OFPort, tableUnSNAT)
	add("table=%d,priority=200,in_port=%d,arp actions=goto_table:%d", tableClassify, gw.OFPort, tableARP)
	add("table=%d,priority=0 actions=drop", tableClassify)
	for _, ip := range v4(gw.IPs) {
		add("table=%d,priority=200,arp,arp_op=1,arp_tpa=%s actions=%s", tableARP, ip, arpReply(gw.MAC, ip))
	}
	add("table=%d,priority=0 actions=drop", tableARP)
	// Replies to a pod's hairpin connection (its own Service) are un-SNATed
	// before conntrack un-DNATs them, and leave by the port they came in by.
	add("table=%d,priority=200,ip,nw_dst=%s actions=%s,ct(table=%d,zone=%d,nat)", tableUnSNAT, HairpinSNAT4,
		load(regHairpin, regHairpin, reg0), policyTables.Conntrack, hairpinZone)
	add("table=%d,priority=0 actions=goto_table:%d", tableUnSNAT, policyTables.Conntrack)
	add("table=%d,priority=0 actions=goto_table:%d", tableHairpinSNAT, tableForward)
	// Hairpin: back out of the port the packet came in by, from the gateway's MAC.
	add("table=%d,priority=300,reg0=%#x/%#x,ip actions=%s", tableForward, regHairpin, regHairpin, hairpinOut(gw.MAC))
	// Replies of connections that entered from the gateway go back to it,
	// even to a local pod: the kernel may have translated the connection
	// (kube-proxy's NodePort, a Service while this table had none, a
	// hostPort), and only the kernel can translate its replies back.
	add("table=%d,priority=250,reg0=%#x/%#x,ip actions=set_field:%s->eth_dst,output:%d", tableForward, regToGateway, regToGateway, gw.MAC, gw.OFPort)
	// From the gateway, anything not for a local pod is dropped rather than
	// sent back where it came from.
	add("table=%d,priority=100,in_port=%d,ip actions=drop", tableForward, gw.OFPort)
	add("table=%d,priority=90,ip actions=set_field:%s->eth_dst,output:%d", tableForward, gw.MAC, gw.OFPort)
	add("table=%d,priority=0 actions=drop", tableForward)
	gw6 := v6(gw.IPs)
	if len(gw6) > 0 {
		// The node resolves pod addresses with solicitations from the gateway.
		add("table=%d,priority=210,in_port=%d,icmp6,icmp_type=135 actions=goto_table:%d", tableClassify, gw.OFPort, tableARP)
		add("table=%d,priority=200,in_port=%d,ipv6 actions=goto_table:%d", tableClassify, gw.OFPort, tableUnSNAT)
		for _, ip := range gw6 {
			ns, na := ndAdvert(gw.MAC, ip, true)
			add("table=%d,priority=200,icmp6,icmp_type=135,nd_target=%s actions=%s", tableARP, ip, ns)
			add("table=%d,priority=200,icmp6,icmp_type=136,nd_target=%s actions=%s", tableNDAdvert, ip, na)
		}
		add("table=%d,priority=0 actions=drop", tableNDAdvert)
		add("table=%d,priority=200,ipv6,ipv6_dst=%s actions=%s,ct(table=%d,zone=%d,nat)", tableUnSNAT, HairpinSNAT6,
			load(regHairpin, regHairpin, reg0), policyTables.Conntrack, hairpinZone)
		add("table=%d,priority=300,reg0=%#x/%#x,ipv6 actions=%s", tableForward, regHairpin, regHairpin, hairpinOut(gw.MAC))
		add("table=%d,priority=250,reg0=%#x/%#x,ipv6 actions=set_field:%s->eth_dst,output:%d", tableForward, regToGateway, regToGateway, gw.MAC, gw.OFPort)
		add("table=%d,priority=100,in_port=%d,ipv6 actions=drop", tableForward, gw.OFPort)
		add("table=%d,priority=90,ipv6 actions=set_field:%s->eth_dst,output:%d", tableForward, gw.MAC, gw.OFPort)
	}

	for _, p := range pods {
		if p.OFPort <= 0 || p.MAC == "" {
			continue // not built yet: no flows, so no traffic
		}
		for _, ip := range v4(p.IPs) {
			add("table=%d,priority=190,in_port=%d,dl_src=%s,ip,nw_src=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, tableUnSNAT)
			add("table=%d,priority=190,in_port=%d,dl_src=%s,arp,arp_spa=%s,arp_sha=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, p.MAC, tableARP)
			add("table=%d,priority=190,arp,arp_op=1,arp_tpa=%s actions=%s", tableARP, ip, arpReply(p.MAC, ip))
			add("table=%d,priority=200,ip,nw_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
				tableForward, ip, gw.MAC, p.MAC, p.OFPort)
			add("table=%d,priority=200,in_port=%d,ip,nw_src=%s,nw_dst=%s actions=%s", tableHairpinSNAT, p.OFPort, ip, ip, hairpinSNAT(HairpinSNAT4))
		}
		if len(gw6) == 0 {
			continue
		}
		pod6 := v6(p.IPs)
		if len(pod6) > 0 {
			add("table=%d,priority=195,in_port=%d,dl_src=%s,icmp6,ipv6_src=fe80::/10,icmp_type=135 actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, tableARP)
		}
		for _, ip := range pod6 {
			add("table=%d,priority=195,in_port=%d,dl_src=%s,icmp6,ipv6_src=%s,icmp_type=135 actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, tableARP)
			add("table=%d,priority=190,in_port=%d,dl_src=%s,ipv6,ipv6_src=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, tableUnSNAT)
			ns, na := ndAdvert(p.MAC, ip, false)
			add("table=%d,priority=190,icmp6,icmp_type=135,nd_target=%s actions=%s", tableARP, ip, ns)
			add("table=%d,priority=190,icmp6,icmp_type=136,nd_target=%s actions=%s", tableNDAdvert, ip, na)
			add("table=%d,priority=200,ipv6,ipv6_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
				tableForward, ip, gw.MAC, p.MAC, p.OFPort)
			add("table=%d,priority=200,in_port=%d,ipv6,ipv6_src=%s,ipv6_dst=%s actions=%s", tableHairpinSNAT, p.OFPort, ip, ip, hairpinSNAT(HairpinSNAT6))
		}
	}
	svcFlows, svcStats := renderServices(in.Services, len(gw6) > 0)
	flows = append(flows, svcFlows...)
	var local []LocalPod
	for _, p := range pods {
		if p.OFPort > 0 && p.MAC != "" && p.Key != "" {
			local = append(local, LocalPod{Key: p.Key, OFPort: p.OFPort, IPs: p.IPs})
		}
	}
	stage := RenderPolicy(in.Policy, local, PolicyNode{GatewayPort: gw.OFPort, Addrs: gw.IPs}, PolicyOptions{Tables: policyTables, Zone: conntrackZone})
	flows = append(flows, stage.Flows...)
	flows = append(flows, guardFlows(in.Guard, gw, pods, in.Policy)...)
	sort.Strings(flows)
	return Output{Flows: flows, Policy: stage, Services: svcStats}
}

// hairpinSNAT translates a pod's connection to itself (after the service
// stage made its destination the pod's own address) from addr, in the
// hairpin zone, and marks it to leave by the port it came in by.
func hairpinSNAT(addr netip.Addr) string {
	return fmt.Sprintf("%s,ct(commit,table=%d,zone=%d,nat(src=%s))", load(regHairpin, regHairpin, reg0), tableForward, hairpinZone, addr)
}

// hairpinOut sends a packet back out of the port it came in by, addressed
// to the MAC it came from, from the gateway's.
func hairpinOut(gwMAC string) string {
	return "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + gwMAC + "->eth_src,IN_PORT"
}

// arpReply turns an ARP request into the reply for ip at mac and sends it
// back where it came from.
func arpReply(mac string, ip netip.Addr) string {
	return strings.Join([]string{
		"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
		"set_field:" + mac + "->eth_src",
		"set_field:2->arp_op",
		"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]",
		"set_field:" + mac + "->arp_sha",
		"move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]",
		"set_field:" + ip.String() + "->arp_spa",
		"IN_PORT",
	}, ",")
}

// ndAdvert returns the actions that turn a neighbour solicitation into the
// advertisement for ip at mac (solicited, override; router for the gateway)
// and send it back, in two steps: OVS accepts a field only with its own
// ICMPv6 type's prerequisites, so the solicitation half (addresses, the
// link-layer option's MAC, the type) runs where type 135 is matched, and
// the advertisement half (target link-layer address, flags, option type)
// in tableNDAdvert, where the packet now matches type 136. The option's MAC
// is written both as source and as target link-layer address: the same
// bytes, whichever type the option has when OVS writes them.
func ndAdvert(mac string, ip netip.Addr, router bool) (solicitation, advertisement string) {
	flags := "0x60000000" // S|O
	if router {
		flags = "0xe0000000" // R|S|O
	}
	solicitation = strings.Join([]string{
		"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
		"set_field:" + mac + "->eth_src",
		"move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[]",
		"set_field:" + ip.String() + "->ipv6_src",
		"set_field:" + mac + "->nd_sll",
		"set_field:136->icmpv6_type",
		"set_field:0->icmpv6_code",
		fmt.Sprintf("goto_table:%d", tableNDAdvert),
	}, ",")
	advertisement = strings.Join([]string{
		"set_field:" + mac + "->nd_tll",
		"set_field:" + flags + "->nd_reserved",
		"set_field:2->nd_options_type",
		"IN_PORT",
	}, ",")
	return solicitation, advertisement
}

func v6(ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if ip.Is6() && !ip.Is4In6() && !ip.IsLinkLocalUnicast() {
			out = append(out, ip)
		}
	}
	return out
}

// parseIPs reads a comma-separated address list (the KeyIPs external_id).
func parseIPs(list string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, nil
}

func v4(ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if ip.Is4() {
			out = append(out, ip)
		}
	}
	return out
}

// PodPorts picks the pods out of a bridge's ports (those the CNI plugin
// tagged) and parses what the pipeline needs. Ports with unparsable tags are
// returned in bad, by name, so the caller can report them; they get no flows.
func PodPorts(ports []ovs.Port) (pods []PodPort, bad []string) {
	for _, p := range ports {
		if p.ExternalIDs[KeyContainerID] == "" {
			continue
		}
		pod := PodPort{Name: p.Name, OFPort: p.OFPort}
		if ns, name := p.ExternalIDs[KeyPodNamespace], p.ExternalIDs[KeyPodName]; ns != "" && name != "" {
			pod.Key = ns + "/" + name
		}
		mac, err := net.ParseMAC(p.ExternalIDs[KeyMAC])
		pod.MAC = mac.String()
		var ipErr error
		pod.IPs, ipErr = parseIPs(p.ExternalIDs[KeyIPs])
		if err != nil || len(mac) != 6 || ipErr != nil || len(pod.IPs) == 0 {
			bad = append(bad, p.Name)
			continue
		}
		pods = append(pods, pod)
	}
	return pods, bad
}
