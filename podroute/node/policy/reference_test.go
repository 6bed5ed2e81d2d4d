package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/ofsim"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// This file checks the flows against the Kubernetes semantics themselves:
// for random small sets of NetworkPolicies and ClusterNetworkPolicies, every
// packet between every pair of endpoints gets the same verdict from the
// rendered OpenFlow tables (simulated by ofsim, on each node the packet
// crosses) as from refAllowed, a direct reading of the API documents that
// shares no code with Compile or Render.

var testTables = pipeline.PolicyTables{Conntrack: 1, ConntrackState: 2, EgressAdmin: 3, EgressNetworkPolicy: 4, EgressBaseline: 5,
	IngressAdmin: 6, IngressNetworkPolicy: 7, IngressBaseline: 8, Commit: 9, Next: 20}

const testGatewayPort = 1

type endpoint struct {
	name     string
	pod      *Pod   // nil: not a pod
	node     string // the pod's node; for a node endpoint, the node
	isNode   bool   // the node itself, talking to its own pods
	ip4, ip6 netip.Addr
}

func (e endpoint) addr(v6 bool) netip.Addr {
	if v6 {
		return e.ip6
	}
	return e.ip4
}

type refWorld struct {
	nss      []*Namespace
	pods     []*Pod
	netpols  []*networkingv1.NetworkPolicy
	cnps     []*cnp.ClusterNetworkPolicy
	ofports  map[string]int
	gateways map[string]netip.Addr // node → gateway IPv4
}

// ---- the reference: Kubernetes semantics, packet by packet ----

func refSelects(ls *metav1.LabelSelector, l map[string]string) bool {
	if ls == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		panic(err)
	}
	return s.Matches(labels.Set(l))
}

func (w *refWorld) nsLabels(ns string) map[string]string {
	for _, n := range w.nss {
		if n.Name == ns {
			return n.Labels
		}
	}
	return nil
}

type pkt struct {
	v6    bool
	proto uint8
	port  uint16
}

func (p pkt) String() string {
	fam := "v4"
	if p.v6 {
		fam = "v6"
	}
	return fmt.Sprintf("%s proto %d port %d", fam, p.proto, p.port)
}

// refAllowed: egress at the source pod, then ingress at the destination pod.
func (w *refWorld) refAllowed(src, dst endpoint, p pkt) bool {
	if src.isNode && dst.pod != nil && dst.node == src.node {
		return true // the node reaches its own pods, always
	}
	if src.pod != nil && !w.refDirection(src.pod, dst, rules.Egress, dst, p) {
		return false
	}
	if dst.pod != nil && !w.refDirection(dst.pod, src, rules.Ingress, dst, p) {
		return false
	}
	return true
}

// refDirection decides one direction for subject; peer is the other end,
// dst the destination (whose named ports apply).
func (w *refWorld) refDirection(subject *Pod, peer endpoint, d rules.Direction, dst endpoint, p pkt) bool {
	tier := func(t cnp.Tier) (decided, allowed bool) {
		var pols []*cnp.ClusterNetworkPolicy
		for _, c := range w.cnps {
			if c.Spec.Tier == t {
				pols = append(pols, c)
			}
		}
		sortCNPs(pols)
		for _, c := range pols {
			if !w.refSubject(c.Spec.Subject, subject) {
				continue
			}
			type rule struct {
				action cnp.Action
				peers  []cnp.EgressPeer
				protos []cnp.Protocol
			}
			var list []rule
			if d == rules.Ingress {
				for _, r := range c.Spec.Ingress {
					var ps []cnp.EgressPeer
					for _, f := range r.From {
						ps = append(ps, cnp.EgressPeer{Namespaces: f.Namespaces, Pods: f.Pods})
					}
					list = append(list, rule{r.Action, ps, r.Protocols})
				}
			} else {
				for _, r := range c.Spec.Egress {
					list = append(list, rule{r.Action, r.To, r.Protocols})
				}
			}
			for _, r := range list {
				if !w.refCNPPeers(r.peers, peer, p) || !refCNPProtocols(r.protos, dst, p) {
					continue
				}
				switch r.action {
				case cnp.Accept:
					return true, true
				case cnp.Deny:
					return true, false
				case cnp.Pass:
					return false, false
				}
			}
		}
		return false, false
	}
	if decided, ok := tier(cnp.AdminTier); decided {
		return ok
	}
	isolated, allowed := false, false
	for _, np := range w.netpols {
		if np.Namespace != subject.Namespace || !refSelects(&np.Spec.PodSelector, subject.Labels) {
			continue
		}
		types := np.Spec.PolicyTypes
		if len(types) == 0 {
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		want := networkingv1.PolicyTypeIngress
		if d == rules.Egress {
			want = networkingv1.PolicyTypeEgress
		}
		for _, t := range types {
			if t != want {
				continue
			}
			isolated = true
			if d == rules.Ingress {
				for _, r := range np.Spec.Ingress {
					if w.refNPPeers(np.Namespace, r.From, peer, p) && refNPPorts(r.Ports, dst, p) {
						allowed = true
					}
				}
			} else {
				for _, r := range np.Spec.Egress {
					if w.refNPPeers(np.Namespace, r.To, peer, p) && refNPPorts(r.Ports, dst, p) {
						allowed = true
					}
				}
			}
		}
	}
	if isolated {
		return allowed
	}
	if decided, ok := tier(cnp.BaselineTier); decided {
		return ok
	}
	return true
}

func sortCNPs(ps []*cnp.ClusterNetworkPolicy) {
	for i := 1; i < len(ps); i++ { // insertion sort: priority, then name
		for j := i; j > 0; j-- {
			a, b := ps[j-1], ps[j]
			if a.Spec.Priority < b.Spec.Priority || (a.Spec.Priority == b.Spec.Priority && a.Name < b.Name) {
				break
			}
			ps[j-1], ps[j] = b, a
		}
	}
}

func (w *refWorld) refSubject(s cnp.Subject, pod *Pod) bool {
	if s.Namespaces != nil {
		return refSelects(s.Namespaces, w.nsLabels(pod.Namespace))
	}
	return refSelects(&s.Pods.NamespaceSelector, w.nsLabels(pod.Namespace)) && refSelects(&s.Pods.PodSelector, pod.Labels)
}

func (w *refWorld) refCNPPeers(peers []cnp.EgressPeer, e endpoint, p pkt) bool {
	for _, peer := range peers {
		switch {
		case peer.Networks != nil:
			a := e.addr(p.v6)
			for _, n := range peer.Networks {
				if netip.MustParsePrefix(n).Contains(a) {
					return true
				}
			}
		case e.pod == nil:
		case peer.Namespaces != nil:
			if refSelects(peer.Namespaces, w.nsLabels(e.pod.Namespace)) {
				return true
			}
		case peer.Pods != nil:
			if refSelects(&peer.Pods.NamespaceSelector, w.nsLabels(e.pod.Namespace)) && refSelects(&peer.Pods.PodSelector, e.pod.Labels) {
				return true
			}
		}
	}
	return false
}

func protoNumber(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 6
}

func refCNPProtocols(protos []cnp.Protocol, dst endpoint, p pkt) bool {
	if len(protos) == 0 {
		return true
	}
	for _, pr := range protos {
		if pr.DestinationNamedPort != "" {
			if dst.pod != nil {
				for _, np := range dst.pod.Ports {
					if np.Name == pr.DestinationNamedPort && uint8(np.Protocol) == p.proto && np.Port == p.port {
						return true
					}
				}
			}
			continue
		}
		for _, c := range []struct {
			n uint8
			m *cnp.PortMatch
		}{{6, pr.TCP}, {17, pr.UDP}, {132, pr.SCTP}} {
			if c.m == nil || c.n != p.proto {
				continue
			}
			dp := c.m.DestinationPort
			switch {
			case dp == nil:
				return true
			case dp.Range != nil:
				if int32(p.port) >= dp.Range.Start && int32(p.port) <= dp.Range.End {
					return true
				}
			case int32(p.port) == dp.Number:
				return true
			}
		}
	}
	return false
}

func (w *refWorld) refNPPeers(ns string, peers []networkingv1.NetworkPolicyPeer, e endpoint, p pkt) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			a := e.addr(p.v6)
			if !netip.MustParsePrefix(peer.IPBlock.CIDR).Contains(a) {
				continue
			}
			excepted := false
			for _, x := range peer.IPBlock.Except {
				if netip.MustParsePrefix(x).Contains(a) {
					excepted = true
				}
			}
			if !excepted {
				return true
			}
			continue
		}
		if e.pod == nil {
			continue
		}
		nsOK := e.pod.Namespace == ns
		if peer.NamespaceSelector != nil {
			nsOK = refSelects(peer.NamespaceSelector, w.nsLabels(e.pod.Namespace))
		}
		podOK := peer.PodSelector == nil || refSelects(peer.PodSelector, e.pod.Labels)
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func refNPPorts(ports []networkingv1.NetworkPolicyPort, dst endpoint, p pkt) bool {
	if len(ports) == 0 {
		return true
	}
	for _, np := range ports {
		proto := corev1.ProtocolTCP
		if np.Protocol != nil {
			proto = *np.Protocol
		}
		if protoNumber(proto) != p.proto {
			continue
		}
		switch {
		case np.Port == nil:
			return true
		case np.Port.Type == intstr.String:
			if dst.pod == nil {
				continue
			}
			for _, cp := range dst.pod.Ports {
				if cp.Name == np.Port.StrVal && uint8(cp.Protocol) == p.proto && cp.Port == p.port {
					return true
				}
			}
		default:
			end := np.Port.IntVal
			if np.EndPort != nil {
				end = *np.EndPort
			}
			if int32(p.port) >= np.Port.IntVal && int32(p.port) <= end {
				return true
			}
		}
	}
	return false
}

// ---- random worlds ----

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randomSelector(r *rand.Rand, keyVals ...[2]string) *metav1.LabelSelector {
	switch r.IntN(4) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		kv := pick(r, keyVals...)
		return &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}
	case 2:
		kv := pick(r, keyVals...)
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: kv[0], Operator: metav1.LabelSelectorOpNotIn, Values: []string{kv[1]}}}}
	}
	a, b := pick(r, keyVals...), pick(r, keyVals...)
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: a[0], Operator: metav1.LabelSelectorOpIn, Values: []string{a[1], b[1]}}}}
}

var podLabels = [][2]string{{"pod", "a"}, {"pod", "b"}, {"pod", "c"}, {"role", "web"}, {"role", "db"}}
var nsLabelChoices = [][2]string{{"ns", "x"}, {"ns", "y"}, {"ns", "z"}, {"env", "prod"}, {"env", "dev"}}

func newRefWorld(r *rand.Rand) *refWorld {
	w := &refWorld{ofports: map[string]int{}, gateways: map[string]netip.Addr{
		"n1": netip.MustParseAddr("100.96.1.1"), "n2": netip.MustParseAddr("100.96.2.1")}}
	host := map[string]int{"n1": 1, "n2": 1}
	for _, ns := range []string{"x", "y", "z"} {
		w.nss = append(w.nss, &Namespace{Name: ns, Labels: map[string]string{"ns": ns, "kubernetes.io/metadata.name": ns, "env": pick(r, "prod", "dev")}})
		for _, name := range []string{"a", "b", "c"} {
			node := pick(r, "n1", "n2")
			host[node]++
			n := node[1:]
			p := &Pod{Namespace: ns, Name: name, Node: node, Labels: map[string]string{"pod": name, "role": pick(r, "web", "db")},
				IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("100.96.%s.%d", n, host[node]))}}
			if r.IntN(4) > 0 {
				p.IPs = append(p.IPs, netip.MustParseAddr(fmt.Sprintf("2001:db8:96:%s::%d", n, host[node])))
			}
			p.Ports = append(p.Ports, NamedPort{"http", rules.TCP, pick[uint16](r, 80, 81)}, NamedPort{"dns", rules.UDP, 53})
			if r.IntN(2) == 0 {
				p.Ports = append(p.Ports, NamedPort{"alt", rules.TCP, 8085}, NamedPort{"assoc", rules.SCTP, 9})
			}
			w.ofports[p.Key()] = 10 + host[node]
			w.pods = append(w.pods, p)
		}
	}
	for i := range r.IntN(5) {
		w.netpols = append(w.netpols, randomNetpol(r, i))
	}
	for i := range r.IntN(4) {
		w.cnps = append(w.cnps, randomCNP(r, i))
	}
	return w
}

var ipBlocks = []networkingv1.IPBlock{
	{CIDR: "100.96.0.0/16", Except: []string{"100.96.1.0/24"}},
	{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.10/32"}},
	{CIDR: "203.0.113.0/24"},
	{CIDR: "0.0.0.0/0", Except: []string{"100.96.2.0/25", "198.51.100.0/24"}},
	{CIDR: "2001:db8::/32", Except: []string{"2001:db8:96:1::/64"}},
	{CIDR: "100.96.1.2/32"},
}

func randomNPPorts(r *rand.Rand) []networkingv1.NetworkPolicyPort {
	proto := func(p corev1.Protocol) *corev1.Protocol { return &p }
	port := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	end := int32(8090)
	choices := []networkingv1.NetworkPolicyPort{
		{Port: port(intstr.FromInt32(80))},
		{Protocol: proto(corev1.ProtocolUDP), Port: port(intstr.FromInt32(53))},
		{Protocol: proto(corev1.ProtocolTCP), Port: port(intstr.FromInt32(8080)), EndPort: &end},
		{Port: port(intstr.FromString("http"))},
		{Protocol: proto(corev1.ProtocolUDP), Port: port(intstr.FromString("dns"))},
		{Protocol: proto(corev1.ProtocolUDP), Port: port(intstr.FromString("http"))}, // resolves nowhere
		{Protocol: proto(corev1.ProtocolUDP)},
		{Protocol: proto(corev1.ProtocolSCTP), Port: port(intstr.FromInt32(9))},
		{Port: port(intstr.FromString("alt"))},
	}
	var out []networkingv1.NetworkPolicyPort
	for range r.IntN(3) {
		out = append(out, pick(r, choices...))
	}
	return out
}

func randomNPPeers(r *rand.Rand) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for range r.IntN(3) {
		switch r.IntN(4) {
		case 0:
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: randomSelector(r, podLabels...)})
		case 1:
			out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: randomSelector(r, nsLabelChoices...)})
		case 2:
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: randomSelector(r, podLabels...), NamespaceSelector: randomSelector(r, nsLabelChoices...)})
		case 3:
			b := pick(r, ipBlocks...)
			out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: &b})
		}
	}
	return out
}

func randomNetpol(r *rand.Rand, i int) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: pick(r, "x", "y", "z"), Name: fmt.Sprintf("np%d", i)}}
	np.Spec.PodSelector = *randomSelector(r, podLabels...)
	np.Spec.PolicyTypes = pick(r, nil, []networkingv1.PolicyType{"Ingress"}, []networkingv1.PolicyType{"Egress"}, []networkingv1.PolicyType{"Ingress", "Egress"})
	for range r.IntN(3) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: randomNPPeers(r), Ports: randomNPPorts(r)})
	}
	for range r.IntN(3) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: randomNPPeers(r), Ports: randomNPPorts(r)})
	}
	return np
}

func randomCNPProtocols(r *rand.Rand) []cnp.Protocol {
	choices := []cnp.Protocol{
		{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Number: 80}}},
		{UDP: &cnp.PortMatch{}},
		{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Range: &cnp.PortRange{Start: 81, End: 8085}}}},
		{SCTP: &cnp.PortMatch{DestinationPort: &cnp.Port{Number: 9}}},
		{DestinationNamedPort: "http"},
	}
	var out []cnp.Protocol
	for range r.IntN(3) {
		out = append(out, pick(r, choices...))
	}
	return out
}

func randomCNPPeer(r *rand.Rand, egress bool) cnp.EgressPeer {
	n := 2
	if egress {
		n = 3
	}
	switch r.IntN(n) {
	case 0:
		return cnp.EgressPeer{Namespaces: randomSelector(r, nsLabelChoices...)}
	case 1:
		return cnp.EgressPeer{Pods: &cnp.NamespacedPod{NamespaceSelector: *randomSelector(r, nsLabelChoices...), PodSelector: *randomSelector(r, podLabels...)}}
	}
	return cnp.EgressPeer{Networks: pick(r, []string{"203.0.113.0/24"}, []string{"100.96.1.0/24", "2001:db8:113::/48"}, []string{"0.0.0.0/0"}, []string{"100.96.2.0/24"})}
}

func randomCNP(r *rand.Rand, i int) *cnp.ClusterNetworkPolicy {
	c := &cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cnp%d", i)}}
	c.Spec.Tier = pick(r, cnp.AdminTier, cnp.BaselineTier)
	c.Spec.Priority = int32(r.IntN(3))
	if r.IntN(2) == 0 {
		c.Spec.Subject.Namespaces = randomSelector(r, nsLabelChoices...)
	} else {
		c.Spec.Subject.Pods = &cnp.NamespacedPod{NamespaceSelector: *randomSelector(r, nsLabelChoices...), PodSelector: *randomSelector(r, podLabels...)}
	}
	for range r.IntN(3) {
		rule := cnp.IngressRule{Action: pick(r, cnp.Accept, cnp.Deny, cnp.Pass), Protocols: randomCNPProtocols(r)}
		for range 1 + r.IntN(2) {
			p := randomCNPPeer(r, false)
			rule.From = append(rule.From, cnp.IngressPeer{Namespaces: p.Namespaces, Pods: p.Pods})
		}
		c.Spec.Ingress = append(c.Spec.Ingress, rule)
	}
	for range r.IntN(3) {
		rule := cnp.EgressRule{Action: pick(r, cnp.Accept, cnp.Deny, cnp.Pass), Protocols: randomCNPProtocols(r)}
		for range 1 + r.IntN(2) {
			rule.To = append(rule.To, randomCNPPeer(r, true))
		}
		c.Spec.Egress = append(c.Spec.Egress, rule)
	}
	return c
}

// ---- the datapath side ----

func (w *refWorld) cluster() *Cluster {
	c := NewCluster()
	for _, ns := range w.nss {
		c.SetNamespace(ns)
	}
	for _, p := range w.pods {
		c.SetPod(p)
	}
	for _, np := range w.netpols {
		c.SetNetworkPolicy(np)
	}
	for _, p := range w.cnps {
		c.SetClusterNetworkPolicy(p)
	}
	return c
}

// switches compiles and renders every node's policy stage.
func (w *refWorld) switches(t *testing.T) (map[string]*ofsim.Switch, map[string][]string) {
	c := w.cluster()
	sws, flows := map[string]*ofsim.Switch{}, map[string][]string{}
	for _, node := range []string{"n1", "n2"} {
		rs := Compile(c, node)
		var local []pipeline.LocalPod
		for _, p := range w.pods {
			if p.Node == node {
				local = append(local, pipeline.LocalPod{Key: p.Key(), OFPort: w.ofports[p.Key()], IPs: p.IPs})
			}
		}
		fs := pipeline.RenderPolicy(rs, local, pipeline.PolicyNode{GatewayPort: testGatewayPort, Addrs: []netip.Addr{w.gateways[node]}}, pipeline.PolicyOptions{Tables: testTables, Zone: 7})
		if len(fs.Problems) > 0 || len(rs.Problems) > 0 {
			t.Fatalf("problems: %v %v", rs.Problems, fs.Problems)
		}
		sw, err := ofsim.Parse(fs.Flows)
		if err != nil {
			t.Fatalf("node %s: %v", node, err)
		}
		sws[node], flows[node] = sw, fs.Flows
	}
	return sws, flows
}

// flowAllowed sends the packet through the bridges it crosses: the source
// pod's node (in from its port), then the destination pod's node if it is
// another one (in from the gateway). ct is the state conntrack reports.
func flowAllowed(w *refWorld, sws map[string]*ofsim.Switch, src, dst endpoint, p pkt, ct ofsim.CT) (bool, []string, error) {
	packet := ofsim.Packet{Src: src.addr(p.v6), Dst: dst.addr(p.v6), Proto: p.proto, DstPort: p.port, CT: ct}
	var trace []string
	run := func(node string, inPort int) (bool, error) {
		packet.InPort = inPort
		res, err := sws[node].Run(packet, testTables.Conntrack, testTables.Next)
		trace = append(trace, "on "+node+":")
		trace = append(trace, res.Trace...)
		if err == nil && res.Forwarded && ct.New && !res.Committed {
			err = fmt.Errorf("a new connection was forwarded without a commit on %s", node)
		}
		// A forwarded new connection is marked allowed, and entered from
		// the gateway if it did (its replies go back there).
		wantMark := uint32(0x1)
		if inPort == testGatewayPort {
			wantMark = 0x5
		}
		if err == nil && res.Forwarded && ct.New && res.CommitMark != wantMark {
			err = fmt.Errorf("a new connection was committed on %s with mark %#x, want %#x", node, res.CommitMark, wantMark)
		}
		return res.Forwarded, err
	}
	if src.pod != nil {
		ok, err := run(src.node, w.ofports[src.pod.Key()])
		if !ok || err != nil {
			return false, trace, err
		}
		if dst.pod != nil && dst.node == src.node {
			return true, trace, nil
		}
	}
	if dst.pod != nil {
		ok, err := run(dst.node, testGatewayPort)
		return ok, trace, err
	}
	return true, trace, nil
}

func TestFlowsAgreeWithReferenceSemantics(t *testing.T) {
	scenarios := 120
	if testing.Short() || raceEnabled {
		scenarios = 25
	}
	externals := []endpoint{
		{name: "ext-203.0.113.10", ip4: netip.MustParseAddr("203.0.113.10"), ip6: netip.MustParseAddr("2001:db8:113::10")},
		{name: "ext-203.0.113.20", ip4: netip.MustParseAddr("203.0.113.20"), ip6: netip.MustParseAddr("2001:db8:114::20")},
		{name: "ext-198.51.100.7", ip4: netip.MustParseAddr("198.51.100.7")},
	}
	packets := []pkt{{proto: 6, port: 80}, {proto: 6, port: 81}, {proto: 6, port: 8085}, {proto: 17, port: 53},
		{proto: 17, port: 5353}, {proto: 132, port: 9}, {proto: 1}}
	checked, allowedCount := 0, 0
	for seed := range uint64(scenarios) {
		r := rand.New(rand.NewPCG(seed, 14))
		w := newRefWorld(r)
		sws, flows := w.switches(t)
		var eps []endpoint
		for _, p := range w.pods {
			e := endpoint{name: p.Key(), pod: p, node: p.Node, ip4: p.IPs[0]}
			if len(p.IPs) > 1 {
				e.ip6 = p.IPs[1]
			}
			eps = append(eps, e)
		}
		nodes := []endpoint{{name: "node n1", isNode: true, node: "n1", ip4: w.gateways["n1"]}, {name: "node n2", isNode: true, node: "n2", ip4: w.gateways["n2"]}}
		srcs := append(append(append([]endpoint{}, eps...), externals...), nodes...)
		dsts := append(append([]endpoint{}, eps...), externals...)
		for _, src := range srcs {
			for _, dst := range dsts {
				if src.pod == nil && dst.pod == nil || src.name == dst.name || (src.isNode && dst.node != src.node) {
					continue
				}
				for _, v6 := range []bool{false, true} {
					if !src.addr(v6).IsValid() || !dst.addr(v6).IsValid() {
						continue
					}
					for _, p := range packets {
						p.v6 = v6
						if p.proto == 1 && v6 {
							p.proto = 58
						}
						want := w.refAllowed(src, dst, p)
						for _, ct := range []ofsim.CT{{New: true}, {Est: true}} {
							got, trace, err := flowAllowed(w, sws, src, dst, p, ct)
							if err != nil || got != want {
								dump, _ := yaml.Marshal(map[string]any{"networkPolicies": w.netpols, "clusterNetworkPolicies": w.cnps})
								t.Fatalf("seed %d: %s -> %s %s (ct %+v): flows say %v, Kubernetes semantics say %v (err %v)\n%s\ntrace:\n%s\nflows n1:\n%s\nflows n2:\n%s",
									seed, src.name, dst.name, p, ct, got, want, err, dump, strings.Join(trace, "\n"),
									strings.Join(flows["n1"], "\n"), strings.Join(flows["n2"], "\n"))
							}
						}
						// A reply of any allowed connection passes; one of a
						// connection the service stage translated but policy
						// never allowed does not.
						if got, _, err := flowAllowed(w, sws, src, dst, p, ofsim.CT{Est: true, Rpl: true, Mark: 0x1}); err != nil || !got {
							t.Fatalf("seed %d: a reply %s -> %s %s was dropped (err %v)", seed, src.name, dst.name, p, err)
						}
						if src.pod != nil {
							res, err := sws[src.node].Run(ofsim.Packet{InPort: w.ofports[src.pod.Key()], Src: src.addr(p.v6), Dst: dst.addr(p.v6),
								Proto: p.proto, DstPort: p.port, CT: ofsim.CT{Est: true, Rpl: true, Mark: 0x2}}, testTables.Conntrack, testTables.Next)
							if err != nil || res.Forwarded {
								t.Fatalf("seed %d: a reply %s -> %s %s of a translated connection never allowed passed (err %v)", seed, src.name, dst.name, p, err)
							}
						}
						checked++
						if want {
							allowedCount++
						}
					}
				}
			}
		}
	}
	t.Logf("%d scenarios, %d packets checked, %d allowed, %d denied", scenarios, checked, allowedCount, checked-allowedCount)
	if allowedCount == 0 || allowedCount == checked {
		t.Fatalf("every packet had the same verdict: the scenarios test nothing")
	}
}
