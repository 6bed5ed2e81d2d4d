// Package proxy computes what a node's pipeline translates for its pods:
// from the cluster's Services and EndpointSlices, every virtual address,
// protocol and port with the endpoints kube-proxy would choose on this node
// (a pure function, Table), kept current by a Watcher. The pipeline
// (podroute/node/pipeline) renders the table as OpenFlow; kube-proxy keeps
// everything the bridge does not translate (NodePorts, the node's own
// connections, traffic arriving from other nodes).
//
// kube-proxy's semantics, as this package reads them (k8s.io/kubernetes
// pkg/proxy, v1.35): a Service without a cluster IP (headless) or of type
// ExternalName has no virtual address; Services and EndpointSlices labelled
// service.kubernetes.io/service-proxy-name belong to another proxy and
// EndpointSlices labelled service.kubernetes.io/headless are ignored; a
// service port's endpoints are the EndpointSlice endpoints (first address)
// of its family whose slice port has the service port's name and
// protocol, deduplicated by address and port; usable endpoints are the
// ready ones or, if there are none, the serving and terminating ones;
// internalTrafficPolicy Local keeps this node's endpoints for the cluster
// IP; pods reaching an external IP or a load balancer's ingress IP get the
// cluster-wide endpoints whatever the external traffic policy (kube-proxy
// "short-circuits" pod traffic to them); sessionAffinity ClientIP keeps a
// client on one endpoint for its timeout (default 10800 s). A service port
// with no usable endpoint gets no entry: its traffic goes to kube-proxy,
// which rejects or drops it as it always has. Not covered: topology hints
// and trafficDistribution (every usable endpoint is used), load balancer
// source ranges (such load balancer IPs are left to kube-proxy).
package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Labels kube-proxy honours.
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = "service.kubernetes.io/headless"
)

// DefaultAffinityTimeout is kube-proxy's ClientIP affinity timeout when the
// Service names none (seconds).
const DefaultAffinityTimeout = 10800

// Service is what the table needs of a Service: its virtual addresses and
// ports and its traffic policies.
type Service struct {
	Namespace, Name string
	ClusterIPs      []netip.Addr // one per family
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr // status ingress IPs in VIP mode, without source ranges
	Ports           []ServicePort
	InternalLocal   bool   // internalTrafficPolicy: Local
	AffinityTimeout uint32 // sessionAffinity ClientIP: its timeout (s); 0: none
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name     string
	Protocol pipeline.Protocol
	Port     uint16
}

// Slice is what the table needs of an EndpointSlice.
type Slice struct {
	Namespace, Name string
	Service         string // the kubernetes.io/service-name label
	IPv6            bool   // addressType IPv6 (else IPv4)
	Ports           []SlicePort
	Endpoints       []SliceEndpoint
}

// SlicePort is one port of an EndpointSlice.
type SlicePort struct {
	Name     string
	Protocol pipeline.Protocol
	Port     uint16
}

// SliceEndpoint is one endpoint of an EndpointSlice, with its conditions
// read as kube-proxy reads them (ready and serving when unset).
type SliceEndpoint struct {
	Addr                        netip.Addr
	Node                        string
	Ready, Serving, Terminating bool
}

// ServiceFromAPI trims a Service to what the table needs; nil for a
// Service kube-proxy does not proxy (no cluster IP, ExternalName, or
// another proxy's), whose addresses then get no entry.
func ServiceFromAPI(s *corev1.Service) *Service {
	if s.Labels[LabelServiceProxyName] != "" || s.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	out := &Service{Namespace: s.Namespace, Name: s.Name}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			out.ClusterIPs = append(out.ClusterIPs, a.Unmap())
		}
	}
	if len(out.ClusterIPs) == 0 { // headless ("None") or not allocated
		return nil
	}
	for _, ip := range s.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil {
			out.ExternalIPs = append(out.ExternalIPs, a.Unmap())
		}
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Spec.LoadBalancerSourceRanges) == 0 {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP {
				continue // the load balancer proxies: traffic must reach it
			}
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				out.LoadBalancerIPs = append(out.LoadBalancerIPs, a.Unmap())
			}
		}
	}
	for _, p := range s.Spec.Ports {
		if p.Port <= 0 || p.Port > 65535 {
			continue
		}
		out.Ports = append(out.Ports, ServicePort{Name: p.Name, Protocol: protocol(p.Protocol), Port: uint16(p.Port)})
	}
	if s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal {
		out.InternalLocal = true
	}
	if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		out.AffinityTimeout = DefaultAffinityTimeout
		if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			out.AffinityTimeout = uint32(*c.ClientIP.TimeoutSeconds)
		}
	}
	return out
}

func protocol(p corev1.Protocol) pipeline.Protocol {
	if p == "" {
		return pipeline.TCP
	}
	return pipeline.Protocol(strings.ToLower(string(p)))
}

// SliceFromAPI trims an EndpointSlice to what the table needs; nil for a
// slice kube-proxy ignores (FQDN, headless, another proxy's, no service
// name).
func SliceFromAPI(s *discoveryv1.EndpointSlice) *Slice {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" || s.Labels[LabelServiceProxyName] != "" {
		return nil
	}
	if _, headless := s.Labels[LabelHeadless]; headless {
		return nil
	}
	out := &Slice{Namespace: s.Namespace, Name: s.Name, Service: svc}
	switch s.AddressType {
	case discoveryv1.AddressTypeIPv4:
	case discoveryv1.AddressTypeIPv6:
		out.IPv6 = true
	default:
		return nil
	}
	for _, p := range s.Ports {
		// kube-proxy ignores ports without a name field or a number.
		if p.Name == nil || p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out.Ports = append(out.Ports, SlicePort{Name: *p.Name, Protocol: protocol(proto), Port: uint16(*p.Port)})
	}
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		a, err := netip.ParseAddr(e.Addresses[0])
		if err != nil {
			continue
		}
		ep := SliceEndpoint{Addr: a.Unmap(),
			Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
			Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
			Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating}
		if e.NodeName != nil {
			ep.Node = *e.NodeName
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out
}

// candidate is one endpoint of a service port, deduplicated across slices.
type candidate struct {
	ep                                 pipeline.Endpoint
	local, ready, serving, terminating bool
}

// Table computes the service table of node: for every proxied Service's
// virtual addresses (cluster IPs, external IPs, load balancer IPs) and
// ports, the endpoints kube-proxy would use for a pod on node. services
// and slices are the cluster's, in any order. Pure.
func Table(services []*Service, eps []*Slice, node string) *pipeline.ServiceTable {
	bySvc := map[string][]*Slice{}
	for _, s := range eps {
		k := s.Namespace + "/" + s.Service
		bySvc[k] = append(bySvc[k], s)
	}
	t := &pipeline.ServiceTable{}
	for _, svc := range services {
		key := svc.Namespace + "/" + svc.Name
		for _, fam6 := range []bool{false, true} {
			var internal, external []netip.Addr
			for _, a := range svc.ClusterIPs {
				if a.Is6() == fam6 {
					internal = append(internal, a)
				}
			}
			if len(internal) == 0 {
				continue // kube-proxy's proxier of a family skips Services without a cluster IP of it
			}
			for _, a := range slices.Concat(svc.ExternalIPs, svc.LoadBalancerIPs) {
				if a.Is6() == fam6 && !slices.Contains(internal, a) && !slices.Contains(external, a) {
					external = append(external, a)
				}
			}
			for _, sp := range svc.Ports {
				cands := candidates(bySvc[key], sp, fam6, node)
				cluster, local := categorize(cands)
				name := fmt.Sprintf("%s:%s", key, portName(sp))
				entry := func(vip netip.Addr, eps []pipeline.Endpoint) {
					if len(eps) == 0 {
						return // kube-proxy rejects or drops: let it
					}
					t.Ports = append(t.Ports, pipeline.ServicePort{Service: name, VIP: vip, Protocol: sp.Protocol, Port: sp.Port,
						Endpoints: eps, AffinityTimeout: svc.AffinityTimeout})
				}
				internalEPs := cluster
				if svc.InternalLocal {
					internalEPs = local
				}
				for _, vip := range internal {
					entry(vip, internalEPs)
				}
				for _, vip := range external {
					entry(vip, cluster)
				}
			}
		}
	}
	sort.Slice(t.Ports, func(i, j int) bool {
		a, b := t.Ports[i], t.Ports[j]
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c < 0
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.Port < b.Port
	})
	return t
}

func portName(p ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%d/%s", p.Port, p.Protocol)
}

// candidates are the endpoints of one service port and family, from the
// slices whose port has its name and protocol, deduplicated by address and
// port (kube-proxy keeps a local copy over a remote one).
func candidates(sls []*Slice, sp ServicePort, v6 bool, node string) []candidate {
	seen := map[pipeline.Endpoint]int{}
	var out []candidate
	for _, s := range sls {
		if s.IPv6 != v6 {
			continue
		}
		for _, p := range s.Ports {
			if p.Name != sp.Name || p.Protocol != sp.Protocol {
				continue
			}
			for _, e := range s.Endpoints {
				if e.Addr.Is6() != v6 {
					continue
				}
				c := candidate{ep: pipeline.Endpoint{Addr: e.Addr, Port: p.Port}, local: node != "" && e.Node == node,
					ready: e.Ready, serving: e.Serving, terminating: e.Terminating}
				if i, ok := seen[c.ep]; ok {
					if c.local {
						out[i] = c
					}
					continue
				}
				seen[c.ep] = len(out)
				out = append(out, c)
			}
		}
	}
	return out
}

// categorize returns the usable endpoints cluster-wide and on this node:
// the ready ones, or if there are none, the serving and terminating ones
// (independently for the two sets, as kube-proxy's CategorizeEndpoints).
func categorize(cands []candidate) (cluster, local []pipeline.Endpoint) {
	pick := func(keep func(candidate) bool) []pipeline.Endpoint {
		var out []pipeline.Endpoint
		for _, c := range cands {
			if keep(c) {
				out = append(out, c.ep)
			}
		}
		slices.SortFunc(out, func(a, b pipeline.Endpoint) int {
			if c := a.Addr.Compare(b.Addr); c != 0 {
				return c
			}
			return int(a.Port) - int(b.Port)
		})
		return out
	}
	cluster = pick(func(c candidate) bool { return c.ready })
	if len(cluster) == 0 {
		cluster = pick(func(c candidate) bool { return c.serving && c.terminating })
	}
	local = pick(func(c candidate) bool { return c.local && c.ready })
	if len(local) == 0 {
		local = pick(func(c candidate) bool { return c.local && c.serving && c.terminating })
	}
	return cluster, local
}
