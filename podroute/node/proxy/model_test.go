package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// The cases below are kube-proxy's documented behaviour (Kubernetes'
// "Virtual IPs and Service Proxies", "Service Internal Traffic Policy",
// "EndpointSlices" conditions, and pkg/proxy's CategorizeEndpoints), read
// from the API objects the way kube-proxy does: written as Services and
// EndpointSlices, checked against the table as text.

const node = "n1"

func svc(mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "s"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "100.64.0.10", ClusterIPs: []string{"100.64.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
	for _, m := range mut {
		m(s)
	}
	return s
}

type ep struct {
	ip, node                    string
	ready, serving, terminating *bool
}

var yes, no = ptr(true), ptr(false)

func ptr[T any](v T) *T { return &v }

func slice(name string, fam discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "s"}},
		AddressType: fam, Ports: ports}
	for _, e := range eps {
		d := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.node != "" {
			d.NodeName = ptr(e.node)
		}
		s.Endpoints = append(s.Endpoints, d)
	}
	return s
}

func port(name string, proto corev1.Protocol, n int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr(name), Protocol: ptr(proto), Port: ptr(n)}
}

var http8080 = []discoveryv1.EndpointPort{port("http", corev1.ProtocolTCP, 8080)}

// text writes a table as "VIP/proto:port -> ep,ep [affinity N]" lines.
func text(t *pipeline.ServiceTable) string {
	var lines []string
	for _, p := range t.Ports {
		var eps []string
		for _, e := range p.Endpoints {
			eps = append(eps, e.String())
		}
		l := fmt.Sprintf("%s/%s:%d -> %s", p.VIP, p.Protocol, p.Port, strings.Join(eps, ","))
		if p.AffinityTimeout > 0 {
			l += fmt.Sprintf(" affinity %d", p.AffinityTimeout)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func TestTable(t *testing.T) {
	cases := []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   string
	}{
		{"ready endpoints on every node, sorted", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"}, ep{ip: "100.96.1.5", node: node})},
			"100.64.0.10/tcp:80 -> 100.96.1.5:8080,100.96.2.5:8080"},
		{"unset conditions are ready (kube-proxy's reading)", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080"},
		{"not ready endpoints are left out while any is ready", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", ready: no, serving: yes, terminating: yes}, ep{ip: "100.96.2.6", ready: yes})},
			"100.64.0.10/tcp:80 -> 100.96.2.6:8080"},
		{"no ready endpoint: the serving terminating ones", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", ready: no, serving: yes, terminating: yes},
				ep{ip: "100.96.2.6", ready: no, serving: no, terminating: yes}, ep{ip: "100.96.2.7", ready: no, serving: yes, terminating: no})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080"},
		{"no usable endpoint: no entry (kube-proxy rejects)", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", ready: no, serving: no, terminating: yes})}, ""},
		{"no EndpointSlice: no entry", svc(), nil, ""},
		{"internalTrafficPolicy Local: this node's endpoints only", svc(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"}, ep{ip: "100.96.1.5", node: node})},
			"100.64.0.10/tcp:80 -> 100.96.1.5:8080"},
		{"internalTrafficPolicy Local without a local endpoint: no entry (kube-proxy drops)", svc(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"})}, ""},
		{"internalTrafficPolicy Local: the local terminating endpoint when no local one is ready", svc(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"},
			ep{ip: "100.96.1.5", node: node, ready: no, serving: yes, terminating: yes})},
			"100.64.0.10/tcp:80 -> 100.96.1.5:8080"},
		{"an external IP from a pod: every endpoint, whatever the traffic policies", svc(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.ExternalIPs = []string{"198.51.100.200"}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"}, ep{ip: "100.96.1.5", node: node})},
			"100.64.0.10/tcp:80 -> 100.96.1.5:8080\n198.51.100.200/tcp:80 -> 100.96.1.5:8080,100.96.2.5:8080"},
		{"load balancer ingress IPs in VIP mode; proxy mode left to the load balancer", svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.50"}, {IP: "203.0.113.51", IPMode: ptr(corev1.LoadBalancerIPModeProxy)},
				{Hostname: "lb.example"}}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080\n203.0.113.50/tcp:80 -> 100.96.2.5:8080"},
		{"load balancer source ranges: the load balancer IP is left to kube-proxy", svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24"}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.50"}}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080"},
		{"ports match by name and protocol; target ports come from the slice", svc(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}, {Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53}}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{port("dns", corev1.ProtocolUDP, 1053), port("dns-tcp", corev1.ProtocolTCP, 1054), port("dns", corev1.ProtocolTCP, 9)},
			ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:53 -> 100.96.2.5:1054\n100.64.0.10/udp:53 -> 100.96.2.5:1053"},
		{"an unnamed service port matches the slice's empty-named port; a slice port without a name field is ignored", svc(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", corev1.ProtocolTCP, 8080)}, ep{ip: "100.96.2.5"}),
			slice("b", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{{Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8081))}}, ep{ip: "100.96.2.6"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080"},
		{"an endpoint in two slices counts once", svc(), []*discoveryv1.EndpointSlice{
			slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"}),
			slice("b", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5", node: "n2"}, ep{ip: "100.96.2.6"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080,100.96.2.6:8080"},
		{"dual-stack: each cluster IP gets the slices of its family", svc(func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"100.64.0.10", "2001:db8:64::10"}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"}),
			slice("b", discoveryv1.AddressTypeIPv6, http8080, ep{ip: "2001:db8:96:2::5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080\n2001:db8:64::10/tcp:80 -> [2001:db8:96:2::5]:8080"},
		{"an IPv6 external IP of an IPv4-only Service is ignored, as kube-proxy's IPv6 proxier does", svc(func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"2001:db8::200"}
		}), []*discoveryv1.EndpointSlice{slice("b", discoveryv1.AddressTypeIPv6, http8080, ep{ip: "2001:db8:96:2::5"})}, ""},
		{"FQDN slices are ignored", svc(), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeFQDN, http8080, ep{ip: "example.com"})}, ""},
		{"session affinity ClientIP: the default timeout", svc(func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			[]*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080 affinity 10800"},
		{"session affinity ClientIP: its timeout", svc(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
		}), []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})},
			"100.64.0.10/tcp:80 -> 100.96.2.5:8080 affinity 60"},
		{"headless: no virtual address", svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			[]*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})}, ""},
		{"ExternalName: not proxied", svc(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }),
			[]*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})}, ""},
		{"another proxy's Service (service-proxy-name)", svc(func(s *corev1.Service) { s.Labels = map[string]string{LabelServiceProxyName: "other"} }),
			[]*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})}, ""},
		{"selectorless Service with a hand-made EndpointSlice (any address)", svc(func(s *corev1.Service) { s.Spec.Selector = nil }),
			[]*discoveryv1.EndpointSlice{slice("manual", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "203.0.113.33"})},
			"100.64.0.10/tcp:80 -> 203.0.113.33:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var svcs []*Service
			if s := ServiceFromAPI(tc.svc); s != nil {
				svcs = append(svcs, s)
			}
			var sls []*Slice
			for _, s := range tc.slices {
				if sl := SliceFromAPI(s); sl != nil {
					sls = append(sls, sl)
				}
			}
			if got := text(Table(svcs, sls, node)); got != tc.want {
				t.Fatalf("table:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Slices labelled headless or with another proxy's name, or without a
// service name, are not read at all.
func TestSliceFromAPIIgnores(t *testing.T) {
	for _, labels := range []map[string]string{
		{discoveryv1.LabelServiceName: "s", LabelHeadless: ""},
		{discoveryv1.LabelServiceName: "s", LabelServiceProxyName: "other"},
		{},
	} {
		s := slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"})
		s.Labels = labels
		if got := SliceFromAPI(s); got != nil {
			t.Errorf("labels %v: read as %+v", labels, got)
		}
	}
}

// The table is the same whatever order the objects come in.
func TestTableOrderIndependent(t *testing.T) {
	s1, s2 := ServiceFromAPI(svc()), ServiceFromAPI(svc(func(s *corev1.Service) {
		s.Name, s.Spec.ClusterIP, s.Spec.ClusterIPs = "t", "100.64.0.11", []string{"100.64.0.11"}
	}))
	a := SliceFromAPI(slice("a", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"}, ep{ip: "100.96.1.5"}))
	b := SliceFromAPI(slice("b", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.9"}))
	b.Service = "t"
	one := text(Table([]*Service{s1, s2}, []*Slice{a, b}, node))
	two := text(Table([]*Service{s2, s1}, []*Slice{b, a}, node))
	if one != two || !strings.Contains(one, "100.64.0.11/tcp:80 -> 100.96.2.9:8080") {
		t.Fatalf("order changed the table:\n%s\n--\n%s", one, two)
	}
	if _, err := netip.ParseAddr("100.64.0.11"); err != nil {
		t.Fatal(err)
	}
}
