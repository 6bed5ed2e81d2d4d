// Package ovs is the node datapath's Open vSwitch library, shared by the
// agent and the CNI plugin (which must stay small: no Kubernetes client):
// an OVS bridge whose pods are addressed from the node's podCIDR and routed,
// without NAT, through a gateway port into the node's own routing table.
// OVSDB through libovsdb, flows through ovs-ofctl, host networking through
// netlink (Linux; other systems build, and say so when called).
//
// The pipeline (OpenFlow 1.3, tables):
//
//	0  classify + spoof guard: the gateway is trusted; a pod port passes only
//	   IPv4/IPv6 and ARP/neighbour solicitations from its own MAC and IPs
//	   (solicitations also from its link-local address); the rest is dropped.
//	10 ARP and IPv6 neighbour discovery responder: requests for the gateway
//	   or a local pod are answered by the switch; nothing else is flooded.
//	20 L3 forwarding: to a local pod by destination IP (MACs rewritten);
//	   from a pod to anywhere else out the gateway; the gateway never hairpins.
//
// Flows are a pure function of OVSDB state (Pipeline), installed with
// `ovs-ofctl replace-flows`, which changes only the flows that differ: an
// agent restart rebuilds the same table without disturbing running pods.
package ovs

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/t1route/t1route/podroute/policy/rules"
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
	tableClassify = 0
	tableARP      = 10
	tableNDAdvert = 11 // finishes neighbour advertisements begun in tableARP
	tableForward  = 20
)

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
		{policyTables.Conntrack, "Conntrack", "every IP packet through conntrack (policy zone)"},
		{policyTables.ConntrackState, "ConntrackState", "replies and related packets of tracked connections pass; the rest is evaluated"},
		{policyTables.EgressAdmin, "EgressAdmin", "ClusterNetworkPolicy Admin tier, egress of local pods"},
		{policyTables.EgressNetworkPolicy, "EgressNetworkPolicy", "NetworkPolicy, egress of local pods"},
		{policyTables.EgressBaseline, "EgressBaseline", "ClusterNetworkPolicy Baseline tier, egress of local pods"},
		{policyTables.IngressAdmin, "IngressAdmin", "ClusterNetworkPolicy Admin tier, ingress to local pods"},
		{policyTables.IngressNetworkPolicy, "IngressNetworkPolicy", "NetworkPolicy, ingress to local pods"},
		{policyTables.IngressBaseline, "IngressBaseline", "ClusterNetworkPolicy Baseline tier, ingress to local pods"},
		{policyTables.Commit, "ConntrackCommit", "allowed new connections committed to conntrack"},
		{tableARP, "NeighborResponder", "ARP and IPv6 neighbour solicitations for the gateway and local pods, answered by the switch"},
		{tableNDAdvert, "NDAdvertisement", "finishes the neighbour advertisements begun in NeighborResponder"},
		{tableForward, "L3Forwarding", "to a local pod by destination address; anything else out the gateway"},
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
// guard IP + ARP, ARP answer, forward), per pod with one IPv4 and one IPv6
// address (adds spoof guard IPv6 + solicitation, link-local solicitation,
// ND answer, forward), and for the node (gateway) in either case.
// The node's counts include the policy stage without any policy (conntrack,
// the tiers' defaults, the node's own traffic to its pods); policies add
// flows of their own (see podroute/policy/rules).
const (
	FlowsPerPod          = 4
	FlowsPerDualStackPod = 10
	NodeFlows            = 8 + rules.BaseFlows + 2
	DualStackNodeFlows   = 15 + rules.BaseFlows + 4
)

// The policy stage's tables (between the spoof guard and forwarding) and
// its conntrack zone.
var policyTables = rules.Tables{Conntrack: 1, ConntrackState: 2, EgressAdmin: 3, EgressNetworkPolicy: 4, EgressBaseline: 5,
	IngressAdmin: 6, IngressNetworkPolicy: 7, IngressBaseline: 8, Commit: 9, Next: tableForward}

const conntrackZone = 65000

// Pipeline returns the complete flow table of the bridge for this gateway
// and these pods, without policies, sorted, in ovs-ofctl syntax. Pure.
func Pipeline(gw Gateway, pods []PodPort) []string {
	flows, _ := PipelineWithPolicy(gw, pods, nil)
	return flows
}

// PipelineWithPolicy returns the complete flow table of the bridge for this
// gateway, these pods and these policy rules (nil: none), sorted, in
// ovs-ofctl syntax, and the policy stage (for its counters). Pure. IPv6
// flows exist only when the gateway has an IPv6 address. Every IP packet
// goes through the policy stage, even without policies, so that
// connections are tracked before a policy arrives.
func PipelineWithPolicy(gw Gateway, pods []PodPort, pol *rules.Set) ([]string, *rules.FlowSet) {
	var flows []string
	add := func(format string, args ...any) { flows = append(flows, fmt.Sprintf(format, args...)) }

	add("table=%d,priority=200,in_port=%d,ip actions=goto_table:%d", tableClassify, gw.OFPort, policyTables.Conntrack)
	add("table=%d,priority=200,in_port=%d,arp actions=goto_table:%d", tableClassify, gw.OFPort, tableARP)
	add("table=%d,priority=0 actions=drop", tableClassify)
	for _, ip := range v4(gw.IPs) {
		add("table=%d,priority=200,arp,arp_op=1,arp_tpa=%s actions=%s", tableARP, ip, arpReply(gw.MAC, ip))
	}
	add("table=%d,priority=0 actions=drop", tableARP)
	// From the gateway, anything not for a local pod is dropped rather than
	// sent back where it came from.
	add("table=%d,priority=100,in_port=%d,ip actions=drop", tableForward, gw.OFPort)
	add("table=%d,priority=90,ip actions=set_field:%s->eth_dst,output:%d", tableForward, gw.MAC, gw.OFPort)
	add("table=%d,priority=0 actions=drop", tableForward)
	gw6 := v6(gw.IPs)
	if len(gw6) > 0 {
		// The node resolves pod addresses with solicitations from the gateway.
		add("table=%d,priority=210,in_port=%d,icmp6,icmp_type=135 actions=goto_table:%d", tableClassify, gw.OFPort, tableARP)
		add("table=%d,priority=200,in_port=%d,ipv6 actions=goto_table:%d", tableClassify, gw.OFPort, policyTables.Conntrack)
		for _, ip := range gw6 {
			ns, na := ndAdvert(gw.MAC, ip, true)
			add("table=%d,priority=200,icmp6,icmp_type=135,nd_target=%s actions=%s", tableARP, ip, ns)
			add("table=%d,priority=200,icmp6,icmp_type=136,nd_target=%s actions=%s", tableNDAdvert, ip, na)
		}
		add("table=%d,priority=0 actions=drop", tableNDAdvert)
		add("table=%d,priority=100,in_port=%d,ipv6 actions=drop", tableForward, gw.OFPort)
		add("table=%d,priority=90,ipv6 actions=set_field:%s->eth_dst,output:%d", tableForward, gw.MAC, gw.OFPort)
	}

	for _, p := range pods {
		if p.OFPort <= 0 || p.MAC == "" {
			continue // not built yet: no flows, so no traffic
		}
		for _, ip := range v4(p.IPs) {
			add("table=%d,priority=190,in_port=%d,dl_src=%s,ip,nw_src=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, policyTables.Conntrack)
			add("table=%d,priority=190,in_port=%d,dl_src=%s,arp,arp_spa=%s,arp_sha=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, p.MAC, tableARP)
			add("table=%d,priority=190,arp,arp_op=1,arp_tpa=%s actions=%s", tableARP, ip, arpReply(p.MAC, ip))
			add("table=%d,priority=200,ip,nw_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
				tableForward, ip, gw.MAC, p.MAC, p.OFPort)
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
				tableClassify, p.OFPort, p.MAC, ip, policyTables.Conntrack)
			ns, na := ndAdvert(p.MAC, ip, false)
			add("table=%d,priority=190,icmp6,icmp_type=135,nd_target=%s actions=%s", tableARP, ip, ns)
			add("table=%d,priority=190,icmp6,icmp_type=136,nd_target=%s actions=%s", tableNDAdvert, ip, na)
			add("table=%d,priority=200,ipv6,ipv6_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
				tableForward, ip, gw.MAC, p.MAC, p.OFPort)
		}
	}
	var local []rules.LocalPod
	for _, p := range pods {
		if p.OFPort > 0 && p.MAC != "" && p.Key != "" {
			local = append(local, rules.LocalPod{Key: p.Key, OFPort: p.OFPort, IPs: p.IPs})
		}
	}
	stage := rules.Render(pol, local, rules.Node{GatewayPort: gw.OFPort, Addrs: gw.IPs}, rules.Options{Tables: policyTables, Zone: conntrackZone})
	flows = append(flows, stage.Flows...)
	sort.Strings(flows)
	return flows, stage
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
func PodPorts(ports []Port) (pods []PodPort, bad []string) {
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
