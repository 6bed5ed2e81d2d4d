package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// Compile reduces every policy of the cluster view to the rules that apply
// to the pods of one node. Pure: the same view gives the same rules.
// A policy that selects no pod of the node contributes nothing, so the cost
// grows with the policies that concern this node, not with the cluster.
func Compile(c *Cluster, node string) *rules.Set {
	b := &builder{c: c, rs: &rules.Set{Node: node}, nsCache: map[string][]string{}, podCache: map[string][]*Pod{}}
	b.rs.Isolated = [2]map[string][]rules.PolicyRef{{}, {}}
	local := map[string][]*Pod{} // namespace → local pods, by name
	for _, p := range c.podsByNode[node] {
		local[p.Namespace] = append(local[p.Namespace], p)
	}
	for _, ps := range local {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	b.local = local
	for _, name := range c.unknownTiers() {
		b.problem("%s %s: tier %q is neither Admin nor Baseline: ignored", rules.KindClusterNetworkPolicy, name, c.cnps[name].Spec.Tier)
	}
	if len(local) > 0 {
		for _, p := range c.sortedClusterNetworkPolicies(cnp.AdminTier) {
			b.clusterPolicy(p, rules.TierAdmin)
		}
		for _, p := range c.sortedNetworkPolicies() {
			if len(local[p.Namespace]) > 0 {
				b.networkPolicy(p)
			}
		}
		for _, p := range c.sortedClusterNetworkPolicies(cnp.BaselineTier) {
			b.clusterPolicy(p, rules.TierBaseline)
		}
	}
	sortRules(b.rs.Rules)
	return b.rs
}

type builder struct {
	c        *Cluster
	rs       *rules.Set
	local    map[string][]*Pod
	nsCache  map[string][]string // namespace selector → namespaces
	podCache map[string][]*Pod   // namespace + pod selector → pods
	problems map[string]bool
}

func (b *builder) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if b.problems == nil {
		b.problems = map[string]bool{}
	}
	if !b.problems[msg] {
		b.problems[msg] = true
		b.rs.Problems = append(b.rs.Problems, msg)
	}
}

// selector converts an API selector; nil selects nothing.
func selector(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// namespaces returns the names of the namespaces a selector picks.
func (b *builder) namespaces(sel labels.Selector) []string {
	key := sel.String()
	if out, ok := b.nsCache[key]; ok {
		return out
	}
	var out []string
	for _, ns := range b.c.namespaces {
		if sel.Matches(labels.Set(ns.Labels)) {
			out = append(out, ns.Name)
		}
	}
	sort.Strings(out)
	b.nsCache[key] = out
	return out
}

// podsIn returns the pods of one namespace a selector picks, cluster-wide.
func (b *builder) podsIn(ns string, sel labels.Selector) []*Pod {
	key := ns + "\x00" + sel.String()
	if out, ok := b.podCache[key]; ok {
		return out
	}
	var out []*Pod
	for _, p := range b.c.podsByNS[ns] {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	b.podCache[key] = out
	return out
}

// localIn returns the node's pods of a namespace a selector picks.
func (b *builder) localIn(ns string, sel labels.Selector) []*Pod {
	var out []*Pod
	for _, p := range b.local[ns] {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// namedPort is a port given by name: NetworkPolicy names a protocol too;
// ClusterNetworkPolicy takes the container port's.
type namedPort struct {
	name     string
	proto    rules.Protocol
	anyProto bool
}

func (n namedPort) resolve(p *Pod) (rules.PortRange, bool) {
	for _, cp := range p.Ports {
		if cp.Name == n.name && (n.anyProto || cp.Protocol == n.proto) {
			return rules.PortRange{Protocol: cp.Protocol, Start: cp.Port, End: cp.Port}, true
		}
	}
	return rules.PortRange{}, false
}

// ruleInput is one API rule before named ports are resolved.
type ruleInput struct {
	base     rules.Rule
	subjects []*Pod
	anyPeer  bool
	peers    []netip.Prefix // ipBlocks, networks and the pod peers' addresses
	peerSets int            // how many sets peers joins: with one, it is normalized already
	anyPort  bool
	numeric  []rules.PortRange
	named    []namedPort
}

// addPeers adds one peer's addresses (normalized).
func (in *ruleInput) addPeers(addrs []netip.Prefix) {
	if len(addrs) == 0 {
		return
	}
	if in.peerSets == 0 {
		in.peers = addrs // shared with the cache: never modified
	} else {
		in.peers = append(slices.Clip(in.peers), addrs...)
	}
	in.peerSets++
}

// emit adds the rule, split into parts where named ports resolve to
// different numbers: on the subjects for ingress, on the peers for egress.
func (b *builder) emit(in ruleInput) {
	if len(in.subjects) == 0 || (!in.anyPeer && len(in.peers) == 0) {
		return // applies to no local pod, or matches no address
	}
	keys := func(ps []*Pod) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.Key()
		}
		sort.Strings(out)
		return out
	}
	part := 0
	// add appends one part; peers are in.peers or, for egress named ports,
	// a group of pod addresses.
	add := func(subjects []*Pod, anyPeer bool, peers []netip.Prefix, anyPort bool, ports []rules.PortRange) {
		r := in.base
		r.Part = part
		part++
		r.Pods = keys(subjects)
		r.AnyPeer, r.AnyPort = anyPeer, anyPort
		switch {
		case anyPeer:
		case in.peerSets == 1 && len(peers) > 0 && &peers[0] == &in.peers[0]:
			r.Peers = peers // in.peers is one peer's normalized set
		default:
			r.Peers = normalize(peers)
		}
		if !anyPort {
			r.Ports = normalizePorts(ports)
		}
		b.rs.Rules = append(b.rs.Rules, r)
	}
	if in.anyPort || len(in.named) == 0 {
		if !in.anyPort && len(in.numeric) == 0 {
			return
		}
		add(in.subjects, in.anyPeer, in.peers, in.anyPort, in.numeric)
		return
	}
	if len(in.numeric) > 0 {
		add(in.subjects, in.anyPeer, in.peers, false, in.numeric)
	}
	resolveAll := func(p *Pod) []rules.PortRange {
		var out []rules.PortRange
		for _, n := range in.named {
			if r, ok := n.resolve(p); ok {
				out = append(out, r)
			}
		}
		return normalizePorts(out)
	}
	type group struct {
		ports []rules.PortRange
		pods  []*Pod
		ips   []netip.Prefix
	}
	groups := map[string]*group{}
	var order []string
	groupOf := func(ports []rules.PortRange) *group {
		k := portsKey(ports)
		if groups[k] == nil {
			groups[k] = &group{ports: ports}
			order = append(order, k)
		}
		return groups[k]
	}
	if in.base.Direction == rules.Ingress {
		// The destination is the subject: its own names count.
		for _, p := range in.subjects {
			if ports := resolveAll(p); len(ports) > 0 {
				g := groupOf(ports)
				g.pods = append(g.pods, p)
			}
		}
	} else {
		// The destination is the peer: every pod address among the peers
		// (selected, or inside an ipBlock or network) answers to its pod's
		// names; other addresses have no names.
		set := normalize(in.peers)
		for _, p := range b.allPodsWithNamedPorts() {
			ports := resolveAll(p)
			if len(ports) == 0 {
				continue
			}
			for _, ip := range p.IPs {
				if in.anyPeer || containsAddr(set, ip) {
					g := groupOf(ports)
					g.ips = append(g.ips, hostPrefix(ip))
				}
			}
		}
	}
	sort.Strings(order)
	for _, k := range order {
		g := groups[k]
		if in.base.Direction == rules.Ingress {
			add(g.pods, in.anyPeer, in.peers, false, g.ports)
		} else {
			add(in.subjects, false, g.ips, false, g.ports)
		}
	}
}

// allPodsWithNamedPorts is every pod that could answer a named port (an
// egress rule to anywhere names a port: only pods have names for ports).
func (b *builder) allPodsWithNamedPorts() []*Pod {
	const key = "\x00named"
	if out, ok := b.podCache[key]; ok {
		return out
	}
	var out []*Pod
	for _, p := range b.c.pods {
		if len(p.Ports) > 0 && len(p.IPs) > 0 {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	b.podCache[key] = out
	return out
}

// selectedAddrs returns the normalized addresses of the pods in the
// namespaces nsSel picks (only ns, if nsSel is nil) that podSel picks,
// cached in the view until a pod or namespace changes.
func (b *builder) selectedAddrs(ns string, nsSel, podSel labels.Selector) []netip.Prefix {
	key := "ns=" + ns + "\x00"
	if nsSel != nil {
		key = "nssel=" + nsSel.String() + "\x00"
	}
	key += podSel.String()
	if out, ok := b.c.peers[key]; ok {
		return out
	}
	nss := []string{ns}
	if nsSel != nil {
		nss = b.namespaces(nsSel)
	}
	var addrs []netip.Prefix
	for _, n := range nss {
		addrs = append(addrs, podAddrs(b.podsIn(n, podSel))...)
	}
	out := normalize(addrs)
	b.c.peers[key] = out
	return out
}

func podAddrs(pods []*Pod) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range pods {
		for _, ip := range p.IPs {
			out = append(out, hostPrefix(ip))
		}
	}
	return out
}

// networkPolicy compiles a NetworkPolicy selecting some of the node's pods.
func (b *builder) networkPolicy(p *networkingv1.NetworkPolicy) {
	ref := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: p.Namespace, Name: p.Name}
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
	if err != nil {
		b.problem("%s: podSelector: %v: ignored", ref, err)
		return
	}
	subjects := b.localIn(p.Namespace, sel)
	if len(subjects) == 0 {
		return
	}
	ingress, egress := false, len(p.Spec.Egress) > 0
	if len(p.Spec.PolicyTypes) == 0 {
		ingress = true
	} else {
		egress = false
		for _, t := range p.Spec.PolicyTypes {
			switch t {
			case networkingv1.PolicyTypeIngress:
				ingress = true
			case networkingv1.PolicyTypeEgress:
				egress = true
			}
		}
	}
	isolate := func(d rules.Direction) {
		for _, s := range subjects {
			b.rs.Isolated[d][s.Key()] = append(b.rs.Isolated[d][s.Key()], ref)
		}
	}
	// Ingress and egress rules differ only in which field holds the peers.
	type netpolRule struct {
		peers []networkingv1.NetworkPolicyPeer
		ports []networkingv1.NetworkPolicyPort
	}
	var dirs []rules.Direction
	byDir := map[rules.Direction][]netpolRule{}
	if ingress {
		dirs = append(dirs, rules.Ingress)
		for _, r := range p.Spec.Ingress {
			byDir[rules.Ingress] = append(byDir[rules.Ingress], netpolRule{r.From, r.Ports})
		}
	}
	if egress {
		dirs = append(dirs, rules.Egress)
		for _, r := range p.Spec.Egress {
			byDir[rules.Egress] = append(byDir[rules.Egress], netpolRule{r.To, r.Ports})
		}
	}
	for _, d := range dirs {
		isolate(d)
		for i, r := range byDir[d] {
			in := ruleInput{base: rules.Rule{Policy: ref, Tier: rules.TierNetworkPolicy, Direction: d, Index: i, Action: rules.Accept},
				subjects: subjects, anyPeer: len(r.peers) == 0}
			for j, peer := range r.peers {
				addrs, err := b.netpolPeer(p.Namespace, peer)
				if err != nil {
					b.problem("%s: %s rule %d peer %d: %v: that peer matches nothing", ref, d, i, j, err)
				}
				in.addPeers(addrs)
			}
			b.netpolPorts(ref, d, i, r.ports, &in)
			b.emit(in)
		}
	}
}

// netpolPeer resolves one NetworkPolicy peer to addresses.
func (b *builder) netpolPeer(ns string, peer networkingv1.NetworkPolicyPeer) ([]netip.Prefix, error) {
	if peer.IPBlock != nil {
		cidr, err := parseCIDR(peer.IPBlock.CIDR)
		if err != nil {
			return nil, fmt.Errorf("ipBlock: %w", err)
		}
		var except []netip.Prefix
		for _, e := range peer.IPBlock.Except {
			p, err := parseCIDR(e)
			if err != nil {
				return nil, fmt.Errorf("ipBlock except: %w", err)
			}
			except = append(except, p)
		}
		return normalize(subtract(cidr, except)), nil
	}
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return nil, fmt.Errorf("no podSelector, namespaceSelector or ipBlock")
	}
	podSel := labels.Everything()
	if peer.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		podSel = s
	}
	var nsSel labels.Selector
	if peer.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		nsSel = s
	}
	return b.selectedAddrs(ns, nsSel, podSel), nil
}

// netpolPorts reads a NetworkPolicy rule's ports into in.
func (b *builder) netpolPorts(ref rules.PolicyRef, d rules.Direction, i int, ports []networkingv1.NetworkPolicyPort, in *ruleInput) {
	in.anyPort = len(ports) == 0
	for j, np := range ports {
		var proto rules.Protocol = rules.TCP
		if np.Protocol != nil {
			p, ok := protocolOf(*np.Protocol)
			if !ok {
				b.problem("%s: %s rule %d port %d: protocol %q is not TCP, UDP or SCTP: that port matches nothing", ref, d, i, j, *np.Protocol)
				continue
			}
			proto = p
		}
		switch {
		case np.Port == nil:
			in.numeric = append(in.numeric, rules.PortRange{Protocol: proto, Start: 0, End: 65535})
		case np.Port.Type == intstr.String:
			in.named = append(in.named, namedPort{name: np.Port.StrVal, proto: proto})
		default:
			start, end := np.Port.IntVal, np.Port.IntVal
			if np.EndPort != nil {
				end = *np.EndPort
			}
			if start < 1 || end > 65535 || end < start {
				b.problem("%s: %s rule %d port %d: %d-%d is not a port range: that port matches nothing", ref, d, i, j, start, end)
				continue
			}
			in.numeric = append(in.numeric, rules.PortRange{Protocol: proto, Start: uint16(start), End: uint16(end)})
		}
	}
}
