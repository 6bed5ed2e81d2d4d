// Package datapath is the node side of t1route: an Open vSwitch bridge whose
// pods are addressed from the node's podCIDR and routed, without NAT, through
// a gateway port into the node's own routing table.
//
// The pipeline (OpenFlow 1.3, tables):
//
//	0  classify + spoof guard: the gateway is trusted; a pod port passes only
//	   IPv4 and ARP from its own MAC and IP; everything else is dropped.
//	10 ARP responder: requests for the gateway or a local pod are answered by
//	   the switch; nothing else is flooded.
//	20 L3 forwarding: to a local pod by destination IP (MACs rewritten);
//	   from a pod to anywhere else out the gateway; the gateway never hairpins.
//
// Flows are a pure function of OVSDB state (Pipeline), installed with
// `ovs-ofctl replace-flows`, which changes only the flows that differ: an
// agent restart rebuilds the same table without disturbing running pods.
package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
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
	tableForward  = 20
)

// Gateway is the node's side of the bridge.
type Gateway struct {
	OFPort int
	MAC    string
	IPs    []netip.Addr
}

// PodPort is one attached pod as the pipeline needs it.
type PodPort struct {
	Name   string
	OFPort int
	MAC    string
	IPs    []netip.Addr
}

// FlowsPerPod is the number of flows Pipeline installs for a pod with one
// address (spoof guard IP + ARP, ARP answer, forward).
const FlowsPerPod = 4

// Pipeline returns the complete flow table of the bridge for this gateway and
// these pods, sorted, in ovs-ofctl syntax. Pure; IPv6 addresses are ignored
// (the datapath is IPv4 for now).
func Pipeline(gw Gateway, pods []PodPort) []string {
	var flows []string
	add := func(format string, args ...any) { flows = append(flows, fmt.Sprintf(format, args...)) }

	add("table=%d,priority=200,in_port=%d,ip actions=goto_table:%d", tableClassify, gw.OFPort, tableForward)
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

	for _, p := range pods {
		if p.OFPort <= 0 || p.MAC == "" {
			continue // not built yet: no flows, so no traffic
		}
		for _, ip := range v4(p.IPs) {
			add("table=%d,priority=190,in_port=%d,dl_src=%s,ip,nw_src=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, tableForward)
			add("table=%d,priority=190,in_port=%d,dl_src=%s,arp,arp_spa=%s,arp_sha=%s actions=goto_table:%d",
				tableClassify, p.OFPort, p.MAC, ip, p.MAC, tableARP)
			add("table=%d,priority=190,arp,arp_op=1,arp_tpa=%s actions=%s", tableARP, ip, arpReply(p.MAC, ip))
			add("table=%d,priority=200,ip,nw_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
				tableForward, ip, gw.MAC, p.MAC, p.OFPort)
		}
	}
	sort.Strings(flows)
	return flows
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
		mac, err := net.ParseMAC(p.ExternalIDs[KeyMAC])
		ok := err == nil && len(mac) == 6
		pod.MAC = mac.String()
		for _, s := range strings.Split(p.ExternalIDs[KeyIPs], ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				ok = false
				break
			}
			pod.IPs = append(pod.IPs, ip)
		}
		if !ok {
			bad = append(bad, p.Name)
			continue
		}
		pods = append(pods, pod)
	}
	return pods, bad
}
