package policy

import (
	"fmt"
	"net/netip"
	"sort"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// GuardSpec is the management-network guard as the node's kernel enforces
// it (podroute/node/hostguard), for the traffic kube-proxy translates in
// the kernel and that never crosses the bridge after translation (a
// NodePort, an external IP, a hostPort whose endpoint is in the management
// network): forwarded packets to Networks are dropped unless they come
// from Allowed.
type GuardSpec struct {
	Networks []netip.Prefix // none: no guard
	Allowed  []netip.Prefix // the exempt pods' addresses, cluster-wide (aggregated)
	Problems []string
}

// HostGuard reads the guard from the same input as the bridge enforces
// it: the ClusterNetworkPolicies carrying the guard's labels. The networks
// are those their egress Deny rules name; the exempt pods are the subjects
// (on every node) of their egress Pass rules. It fails closed: a Pass
// whose subject cannot be read exempts nobody. Pure.
func HostGuard(c *Cluster) GuardSpec {
	b := &builder{c: c, rs: &rules.Set{}, nsCache: map[string][]string{}, podCache: map[string][]*Pod{}}
	var spec GuardSpec
	names := make([]string, 0, len(c.cnps))
	for name, p := range c.cnps {
		if isGuard(p) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var nets, allowed []netip.Prefix
	for _, name := range names {
		p := c.cnps[name]
		ref := rules.PolicyRef{Kind: rules.KindClusterNetworkPolicy, Name: name}
		for _, r := range p.Spec.Egress {
			switch r.Action {
			case cnp.Deny:
				for _, peer := range r.To {
					for _, n := range peer.Networks {
						pf, err := parseCIDR(n)
						if err != nil {
							b.problem("%s: network %q: %v: not guarded in the kernel", ref, n, err)
							continue
						}
						nets = append(nets, pf)
					}
				}
			case cnp.Pass, cnp.Accept:
				addrs, err := b.guardSubjects(p.Spec.Subject)
				if err != nil {
					b.problem("%s: subject: %v: exempts nobody in the kernel", ref, err)
					continue
				}
				allowed = append(allowed, addrs...)
			}
		}
	}
	spec.Networks, spec.Allowed = normalize(nets), normalize(allowed)
	spec.Problems = b.rs.Problems
	return spec
}

func isGuard(p *cnp.ClusterNetworkPolicy) bool {
	return labels.SelectorFromSet(cnp.ManagementGuardLabels).Matches(labels.Set(p.Labels))
}

// guardSubjects returns the addresses of every pod (on any node) a
// subject selects.
func (b *builder) guardSubjects(s cnp.Subject) ([]netip.Prefix, error) {
	var nsSel, podSel labels.Selector
	var err error
	switch {
	case s.Namespaces != nil && s.Pods == nil:
		nsSel, err = selector(s.Namespaces)
		podSel = labels.Everything()
	case s.Pods != nil && s.Namespaces == nil:
		if nsSel, err = selector(&s.Pods.NamespaceSelector); err == nil {
			podSel, err = selector(&s.Pods.PodSelector)
		}
	default:
		return nil, fmt.Errorf("exactly one of namespaces and pods must be set")
	}
	if err != nil {
		return nil, err
	}
	return b.selectedAddrs("", nsSel, podSel), nil
}
