package pipeline

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
)

// Service translation: pods' connections to Service virtual IPs are
// translated here, in the bridge, before the policy stage, so that policy
// judges the real endpoint and the real client, and a connection's replies
// are un-translated by the same conntrack entry whatever path they take.
// kube-proxy keeps everything else (NodePort, the node's own traffic,
// traffic from other nodes); package proxy computes the table from the
// Kubernetes API as kube-proxy would. See docs/datapath-services.md.
//
// The path of a pod's new connection (tables in Tables()):
//
//	ConntrackState  new connection from a pod: resubmit to SessionAffinity,
//	                then ServiceLB
//	SessionAffinity learned flows: client + VIP + port -> the endpoint it had
//	ServiceLB       VIP + protocol + port -> service ID in reg1 and a hash
//	                of the connection (multipath: addresses, protocol and
//	                ports, UDP's included) in reg2; anything else goes on
//	                to policy untouched
//	EndpointSelect  (service, hash) -> endpoint address and port in registers
//	AffinityLearn   services with ClientIP affinity learn the choice
//	EndpointDNAT    endpoint -> ct(commit, nat(dst=endpoint)) with the
//	                service ct_mark, then the policy stage
//
// A service port with no usable endpoint has no flows: the packet goes on
// to the gateway and kube-proxy answers it as it always did (reject).

// Protocol is a service port's transport protocol, as OVS names it.
type Protocol string

// Service protocols.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// Endpoint is one backend of a service port: an address and the port the
// connection is translated to.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

func (e Endpoint) String() string { return netip.AddrPortFrom(e.Addr, e.Port).String() }

// ServicePort is one virtual address, protocol and port of a Service with
// the endpoints this node's pods are balanced over.
type ServicePort struct {
	// Service names it for people: "namespace/name:port".
	Service   string
	VIP       netip.Addr
	Protocol  Protocol
	Port      uint16
	Endpoints []Endpoint // of VIP's family; none: no flows
	// AffinityTimeout is the ClientIP session affinity timeout in seconds
	// (0: no affinity).
	AffinityTimeout uint32
}

// ServiceTable is what the pipeline translates. Pure data; package proxy
// builds it.
type ServiceTable struct {
	Ports []ServicePort
}

// Endpoints returns the endpoints of the entry for vip, protocol and
// port, or nil.
func (t *ServiceTable) Endpoints(vip netip.Addr, proto Protocol, port uint16) []Endpoint {
	if t == nil {
		return nil
	}
	for _, p := range t.Ports {
		if p.VIP == vip && p.Protocol == proto && p.Port == port {
			return p.Endpoints
		}
	}
	return nil
}

// Registers and conntrack marks the pipeline uses. reg0 carries flags
// between tables; the service stage keeps its choice in reg1-reg4 and
// xxreg3 (reg12-reg15).
const (
	// reg0 flags.
	regHairpin      = 0x1 // send the packet back out of the port it came in by, MACs swapped
	regToGateway    = 0x2 // a reply of a connection that entered from the gateway: back to the gateway
	regEPByAffinity = 0x4 // the endpoint was chosen by a session affinity entry (bit 2, see learnAffinity)

	reg0, ctMark = "NXM_NX_REG0", "NXM_NX_CT_MARK" // as load writes them

	// ct_mark bits, in the pod conntrack zone.
	markAllowed     = 0x1 // the policy stage allowed the connection
	markService     = 0x2 // the pipeline translated the connection to an endpoint
	markFromGateway = 0x4 // the connection entered the bridge from the gateway
)

// Hairpin SNAT: a pod reaching its own Service would receive a packet
// from its own address, which its kernel drops, so such connections are
// also translated from these addresses, in their own conntrack zone. They
// are link-local (IPv4) and unique-local (IPv6): they never leave the node,
// the pod routes them to the gateway like any other, and unlike the
// gateway's own address they cannot collide with the node's real
// connections to the pod.
var (
	HairpinSNAT4 = netip.MustParseAddr("169.254.0.253")
	HairpinSNAT6 = netip.MustParseAddr("fc00::a9fe:fd")
)

// CookieServiceTag marks the service stage's flows (and the affinity
// entries they learn) in their top 16 bits; the low bits are the service
// port's ID.
const CookieServiceTag uint64 = 0x7473 << 48

// maxAffinity is the longest affinity OVS can keep (idle_timeout is 16-bit);
// Kubernetes allows up to 86400 s.
const maxAffinity = 65535

// ServiceStats says what the service stage rendered.
type ServiceStats struct {
	Ports, Endpoints, Flows int
	Problems                []string
}

// serviceRenderer renders the service stage's flows.
type serviceRenderer struct {
	flows []string
	stats ServiceStats
	v6    bool // the node has IPv6: render IPv6 entries
}

func (s *serviceRenderer) add(format string, args ...any) {
	s.flows = append(s.flows, fmt.Sprintf(format, args...))
}

// renderServices returns the flows of the service tables for t (nil: the
// fixed flows only).
func renderServices(t *ServiceTable, v6 bool) ([]string, ServiceStats) {
	s := &serviceRenderer{v6: v6}
	s.add("table=%d,priority=0 actions=%s", tableSessionAffinity, load(0, regEPByAffinity, reg0))
	s.add("table=%d,priority=300,reg0=%#x/%#x actions=goto_table:%d", tableServiceLB, regEPByAffinity, regEPByAffinity, tableEndpointDNAT)
	s.add("table=%d,priority=0 actions=goto_table:%d", tableServiceLB, policyTables.egress())
	s.add("table=%d,priority=0 actions=goto_table:%d", tableEndpointSelect, policyTables.egress())
	s.add("table=%d,priority=0 actions=goto_table:%d", tableAffinityLearn, tableEndpointDNAT)
	// An affinity entry naming an endpoint that is gone: choose again.
	s.add("table=%d,priority=190,reg0=%#x/%#x actions=%s,resubmit(,%d)", tableEndpointDNAT,
		regEPByAffinity, regEPByAffinity, load(0, regEPByAffinity, reg0), tableServiceLB)
	s.add("table=%d,priority=0 actions=goto_table:%d", tableEndpointDNAT, policyTables.egress())
	fixed := len(s.flows)
	if t != nil {
		s.table(t)
	}
	s.stats.Flows = len(s.flows) - fixed
	return s.flows, s.stats
}

type dnatKey struct {
	proto Protocol
	ep    Endpoint
}

func (s *serviceRenderer) table(t *ServiceTable) {
	ports := slices.Clone(t.Ports)
	slices.SortFunc(ports, func(a, b ServicePort) int {
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	ids := map[uint32]bool{0: true}
	dnat := map[dnatKey]bool{}
	for _, p := range ports {
		if !s.usable(p) {
			continue
		}
		id := serviceID(p, ids)
		cookie := CookieServiceTag | uint64(id)
		fam, l4 := matchFamily(p.VIP, p.Protocol)
		eps := make([]Endpoint, 0, len(p.Endpoints))
		for _, e := range p.Endpoints {
			if e.Addr.Is4() != p.VIP.Is4() || e.Port == 0 {
				s.stats.Problems = append(s.stats.Problems, fmt.Sprintf("%s: endpoint %s ignored: not of %s's family or no port", p.Service, e, p.VIP))
				continue
			}
			eps = append(eps, e)
		}
		if len(eps) == 0 {
			continue
		}
		s.stats.Ports++
		s.stats.Endpoints += len(eps)
		s.add("table=%d,priority=200,cookie=%#x,%s,%s=%s,tp_dst=%d actions=set_field:%#x->reg1,multipath(symmetric_l3l4+udp,0,modulo_n,%d,0,NXM_NX_REG2[0..15]),goto_table:%d",
			tableServiceLB, cookie, l4, fam+"_dst", p.VIP, p.Port, id, len(eps), tableEndpointSelect)
		next := tableEndpointDNAT
		if p.AffinityTimeout > 0 {
			next = tableAffinityLearn
			s.add("table=%d,priority=200,cookie=%#x,reg1=%#x,%s actions=%s,goto_table:%d", tableAffinityLearn, cookie, id, l4,
				learnAffinity(p, cookie), tableEndpointDNAT)
		}
		for i, e := range eps {
			s.add("table=%d,priority=200,cookie=%#x,reg1=%#x,reg2=%d actions=%s,set_field:%d->reg3,goto_table:%d",
				tableEndpointSelect, cookie, id, i, loadEndpointAddr(e.Addr), e.Port, next)
			k := dnatKey{p.Protocol, e}
			if dnat[k] {
				continue
			}
			dnat[k] = true
			s.add("table=%d,priority=200,cookie=%#x,%s,%s,reg3=%d actions=ct(commit,table=%d,zone=%d,nat(dst=%s),exec(%s))",
				tableEndpointDNAT, CookieServiceTag, l4, matchEndpointAddr(e.Addr), e.Port, policyTables.egress(), conntrackZone,
				natAddr(e), load(markService, markService, ctMark))
		}
	}
}

// usable says whether p can be rendered, noting why not.
func (s *serviceRenderer) usable(p ServicePort) bool {
	switch {
	case !p.VIP.IsValid() || p.Port == 0 || len(p.Endpoints) == 0:
		return false
	case p.VIP.Is6() && !s.v6:
		return false // an IPv6 Service on a node without IPv6 pods
	case p.Protocol == SCTP:
		// OVS's userspace conntrack cannot track SCTP: kube-proxy keeps it.
		s.stats.Problems = append(s.stats.Problems, fmt.Sprintf("%s: SCTP is left to kube-proxy", p.Service))
		return false
	case p.Protocol != TCP && p.Protocol != UDP:
		s.stats.Problems = append(s.stats.Problems, fmt.Sprintf("%s: protocol %q not translated", p.Service, p.Protocol))
		return false
	}
	return true
}

// serviceID is a stable ID for a service port (a hash, so IDs do not shift
// when other Services come and go and a sync changes only the flows of the
// Services that changed), probed past collisions.
func serviceID(p ServicePort, taken map[uint32]bool) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%s|%d", p.Service, p.VIP, p.Protocol, p.Port)
	id := h.Sum32()
	for taken[id] {
		id++
	}
	taken[id] = true
	return id
}

// matchFamily returns the address field prefix ("nw" or "ipv6") and the
// protocol match of a service port.
func matchFamily(vip netip.Addr, proto Protocol) (string, string) {
	if vip.Is4() {
		return "nw", string(proto)
	}
	return "ipv6", string(proto) + "6"
}

// loadEndpointAddr puts an endpoint's address in reg4 (IPv4) or xxreg3 (IPv6).
func loadEndpointAddr(a netip.Addr) string {
	if a.Is4() {
		return fmt.Sprintf("set_field:%s->reg4", addrHex(a))
	}
	return fmt.Sprintf("set_field:%s->xxreg3", addrHex(a))
}

func matchEndpointAddr(a netip.Addr) string {
	if a.Is4() {
		return "reg4=" + addrHex(a)
	}
	return "xxreg3=" + addrHex(a)
}

// addrHex writes an address as the register value OVS prints.
func addrHex(a netip.Addr) string {
	h := strings.TrimLeft(hex.EncodeToString(a.AsSlice()), "0")
	if h == "" {
		h = "0"
	}
	return "0x" + h
}

func natAddr(e Endpoint) string {
	if e.Addr.Is4() {
		return fmt.Sprintf("%s:%d", e.Addr, e.Port)
	}
	return fmt.Sprintf("[%s]:%d", e.Addr, e.Port)
}

// learnAffinity is the learn action that remembers, for the client's
// address, the endpoint chosen for this service port, for
// AffinityTimeout seconds after the client's last new connection to it
// (kube-proxy's "recent" match: the entry is refreshed each time it is
// used). The learned flows belong to this flow (delete_learned): they go
// when the Service or its affinity does.
func learnAffinity(p ServicePort, cookie uint64) string {
	timeout := min(p.AffinityTimeout, maxAffinity)
	ethType, src, dst, addr := "0x800", "NXM_OF_IP_SRC[]", "NXM_OF_IP_DST[]", "NXM_NX_REG4[]"
	if p.VIP.Is6() {
		ethType, src, dst, addr = "0x86dd", "NXM_NX_IPV6_SRC[]", "NXM_NX_IPV6_DST[]", "NXM_NX_XXREG3[]"
	}
	proto, port := 6, "NXM_OF_TCP_DST[]"
	if p.Protocol == UDP {
		proto, port = 17, "NXM_OF_UDP_DST[]"
	}
	return fmt.Sprintf("learn(table=%d,idle_timeout=%d,priority=200,delete_learned,cookie=%#x,eth_type=%s,nw_proto=%d,%s,%s,%s,"+
		"load:%s->%s,load:NXM_NX_REG3[]->NXM_NX_REG3[],%s)",
		tableSessionAffinity, timeout, cookie, ethType, proto, src, dst, port, addr, addr, load(regEPByAffinity, regEPByAffinity, reg0))
}
