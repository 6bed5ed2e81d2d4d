package policy

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// clusterPolicy compiles a ClusterNetworkPolicy of the Admin or Baseline tier.
func (b *builder) clusterPolicy(p *cnp.ClusterNetworkPolicy, tier rules.Tier) {
	ref := rules.PolicyRef{Kind: rules.KindClusterNetworkPolicy, Name: p.Name}
	subjects, err := b.cnpSubjects(p.Spec.Subject)
	if err != nil {
		b.problem("%s: subject: %v: ignored", ref, err)
		return
	}
	if len(subjects) == 0 {
		return
	}
	if p.Spec.Priority < 0 || p.Spec.Priority > 1000 {
		b.problem("%s: priority %d is outside 0-1000: evaluated as written", ref, p.Spec.Priority)
	}
	base := rules.Rule{Policy: ref, Tier: tier, Priority: p.Spec.Priority}
	for i, r := range p.Spec.Ingress {
		in := ruleInput{base: base, subjects: subjects}
		in.base.Direction, in.base.Index, in.base.Name = rules.Ingress, i, r.Name
		peers := make([]cnp.EgressPeer, len(r.From))
		for j, f := range r.From {
			peers[j] = cnp.EgressPeer{Namespaces: f.Namespaces, Pods: f.Pods} // none set: fails closed below
		}
		b.cnpRule(ref, r.Action, peers, r.Protocols, &in)
	}
	for i, r := range p.Spec.Egress {
		in := ruleInput{base: base, subjects: subjects}
		in.base.Direction, in.base.Index, in.base.Name = rules.Egress, i, r.Name
		b.cnpRule(ref, r.Action, r.To, r.Protocols, &in)
	}
}

// cnpSubjects returns the node's pods a subject selects.
func (b *builder) cnpSubjects(s cnp.Subject) ([]*Pod, error) {
	switch {
	case s.Namespaces != nil && s.Pods == nil:
		nsSel, err := selector(s.Namespaces)
		if err != nil {
			return nil, err
		}
		var out []*Pod
		for _, ns := range b.namespaces(nsSel) {
			out = append(out, b.local[ns]...)
		}
		return out, nil
	case s.Pods != nil && s.Namespaces == nil:
		nsSel, err := selector(&s.Pods.NamespaceSelector)
		if err != nil {
			return nil, err
		}
		podSel, err := selector(&s.Pods.PodSelector)
		if err != nil {
			return nil, err
		}
		var out []*Pod
		for _, ns := range b.namespaces(nsSel) {
			out = append(out, b.localIn(ns, podSel)...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("exactly one of namespaces and pods must be set")
}

// cnpRule fills in a rule's peers and protocols and emits it. A peer or
// protocol this version cannot enforce fails closed, as the API asks: an
// Accept rule ignores it; a Deny or Pass rule becomes "deny everything".
func (b *builder) cnpRule(ref rules.PolicyRef, action cnp.Action, peers []cnp.EgressPeer, protocols []cnp.Protocol, in *ruleInput) {
	d, i := in.base.Direction, in.base.Index
	failClosed := ""
	switch action {
	case cnp.Accept:
		in.base.Action = rules.Accept
	case cnp.Deny:
		in.base.Action = rules.Deny
	case cnp.Pass:
		in.base.Action = rules.Pass
	default:
		in.base.Action = rules.Deny
		failClosed = fmt.Sprintf("action %q is not Accept, Deny or Pass", action)
	}
	for j, peer := range peers {
		addrs, err := b.cnpPeer(peer)
		if err != nil {
			if in.base.Action == rules.Accept {
				b.problem("%s: %s rule %d peer %d: %v: that peer matches nothing", ref, d, i, j, err)
				continue
			}
			failClosed = fmt.Sprintf("peer %d: %v", j, err)
			break
		}
		in.addPeers(addrs)
	}
	in.anyPort = len(protocols) == 0
	for j, pr := range protocols {
		if err := b.cnpProtocol(pr, in); err != nil {
			if in.base.Action == rules.Accept {
				b.problem("%s: %s rule %d protocol %d: %v: that protocol matches nothing", ref, d, i, j, err)
				continue
			}
			failClosed = fmt.Sprintf("protocol %d: %v", j, err)
			break
		}
	}
	if failClosed != "" && in.base.Action != rules.Accept {
		b.problem("%s: %s rule %d: %s: enforced as Deny of all traffic (fail closed)", ref, d, i, failClosed)
		in.base.Action = rules.Deny
		in.anyPeer, in.peers = true, nil
		in.anyPort, in.numeric, in.named = true, nil, nil
	}
	b.emit(*in)
}

// cnpPeer resolves one peer to addresses.
func (b *builder) cnpPeer(p cnp.EgressPeer) ([]netip.Prefix, error) {
	set := 0
	for _, isSet := range []bool{p.Namespaces != nil, p.Pods != nil, p.Nodes != nil, p.Networks != nil, p.DomainNames != nil} {
		if isSet {
			set++
		}
	}
	switch {
	case set != 1:
		return nil, fmt.Errorf("a peer must set exactly one field; this one sets %d that t1route knows", set)
	case p.Nodes != nil:
		return nil, fmt.Errorf("nodes peers (experimental) are not enforced by t1route")
	case p.DomainNames != nil:
		return nil, fmt.Errorf("domainNames peers (experimental) are not enforced by t1route")
	case p.Networks != nil:
		var out []netip.Prefix
		for _, n := range p.Networks {
			pf, err := parseCIDR(n)
			if err != nil {
				return nil, fmt.Errorf("networks: %w", err)
			}
			out = append(out, pf)
		}
		return normalize(out), nil
	}
	var nsSel, podSel labels.Selector
	var err error
	if p.Namespaces != nil {
		nsSel, err = selector(p.Namespaces)
		podSel = labels.Everything()
	} else {
		if nsSel, err = selector(&p.Pods.NamespaceSelector); err == nil {
			podSel, err = selector(&p.Pods.PodSelector)
		}
	}
	if err != nil {
		return nil, err
	}
	return b.selectedAddrs("", nsSel, podSel), nil
}

// cnpProtocol adds one protocol match to in.
func (b *builder) cnpProtocol(pr cnp.Protocol, in *ruleInput) error {
	type one struct {
		proto rules.Protocol
		m     *cnp.PortMatch
	}
	var set []one
	for _, o := range []one{{rules.TCP, pr.TCP}, {rules.UDP, pr.UDP}, {rules.SCTP, pr.SCTP}} {
		if o.m != nil {
			set = append(set, o)
		}
	}
	switch {
	case len(set) == 0 && pr.DestinationNamedPort != "":
		in.named = append(in.named, namedPort{name: pr.DestinationNamedPort, anyProto: true})
		return nil
	case len(set) != 1 || pr.DestinationNamedPort != "":
		return fmt.Errorf("exactly one of tcp, udp, sctp and destinationNamedPort must be set")
	}
	o := set[0]
	dp := o.m.DestinationPort
	switch {
	case dp == nil:
		in.numeric = append(in.numeric, rules.PortRange{Protocol: o.proto, Start: 0, End: 65535})
	case dp.Range == nil && dp.Number >= 1 && dp.Number <= 65535:
		in.numeric = append(in.numeric, rules.PortRange{Protocol: o.proto, Start: uint16(dp.Number), End: uint16(dp.Number)})
	case dp.Range != nil && dp.Number == 0 && dp.Range.Start >= 1 && dp.Range.End <= 65535 && dp.Range.Start <= dp.Range.End:
		in.numeric = append(in.numeric, rules.PortRange{Protocol: o.proto, Start: uint16(dp.Range.Start), End: uint16(dp.Range.End)})
	default:
		return fmt.Errorf("destinationPort must be a number or a range within 1-65535")
	}
	return nil
}
