package guard

import (
	"fmt"
	"maps"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// Labels mark the guard's policies: what podroute/guard selects, and
// the only ClusterNetworkPolicies it changes or deletes. The node agent
// reads the same labels (its kernel guard).
var Labels = cnp.ManagementGuardLabels

// Names and priorities of the guard's policies: the highest precedence of
// the Admin tier, so no other policy can open the management network.
const (
	GuardPolicyPrefix = "t1route-management-guard"
	guardPassPriority = 0
	guardDenyPriority = 1
)

// InstanceLabel carries the install a guard policy belongs to.
const InstanceLabel = "app.kubernetes.io/instance"

// Owner is the install whose guard it is: its policies are named
// Prefix-deny and Prefix-allow-N, and carry Instance (if set) as
// InstanceLabel besides Labels, so that two installs in one cluster keep
// apart. The names are fixed in advance (Names), so that the controller's
// RBAC can grant exactly those and no other ClusterNetworkPolicy.
type Owner struct {
	Prefix   string
	Instance string
}

// DefaultOwner names the guard GuardPolicyPrefix-*, without an instance
// label.
func DefaultOwner() Owner { return Owner{Prefix: GuardPolicyPrefix} }

// DenyName is the name of the owner's deny policy.
func (o Owner) DenyName() string { return o.Prefix + "-deny" }

// AllowName is the name of the owner's policy for the i-th (from 1)
// allowed selector.
func (o Owner) AllowName(i int) string { return fmt.Sprintf("%s-allow-%d", o.Prefix, i) }

// Names are every name the owner's guard policies can have, whatever the
// configuration: the deny policy and one per possible allowed selector
// (config.MaxGuardSelectors).
func (o Owner) Names() []string {
	names := []string{o.DenyName()}
	for i := 1; i <= config.MaxGuardSelectors; i++ {
		names = append(names, o.AllowName(i))
	}
	return names
}

// PolicyLabels are the labels of the owner's guard policies.
func (o Owner) PolicyLabels() map[string]string {
	l := maps.Clone(Labels)
	if o.Instance != "" {
		l[InstanceLabel] = o.Instance
	}
	return l
}

// ManagementGuard renders the management-network guard as Admin-tier
// ClusterNetworkPolicies: one per allowed selector passing its pods'
// egress to cidrs on to NetworkPolicy (as if there were no guard), then one
// denying every pod's egress to cidrs. Pass rather than Accept: the guard
// exempts these pods but grants them nothing that NetworkPolicy or the
// Baseline tier deny. Host-network pods are never subject to pod policy.
func ManagementGuard(cidrs []netip.Prefix, allowed []config.GuardSelector) ([]*cnp.ClusterNetworkPolicy, error) {
	return ManagementGuardOf(DefaultOwner(), cidrs, allowed)
}

// ManagementGuardOf is ManagementGuard with owner's names and labels. More
// than config.MaxGuardSelectors allowed selectors are an error.
func ManagementGuardOf(owner Owner, cidrs []netip.Prefix, allowed []config.GuardSelector) ([]*cnp.ClusterNetworkPolicy, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	if len(allowed) > config.MaxGuardSelectors {
		return nil, fmt.Errorf("%d management guard selectors: at most %d (the vSphere cloud provider's and CSI driver's included)", len(allowed), config.MaxGuardSelectors)
	}
	var nets []string
	for _, c := range cidrs {
		if !c.IsValid() {
			return nil, fmt.Errorf("management CIDR %v is not valid", c)
		}
		nets = append(nets, c.Masked().String())
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: owner.PolicyLabels()}
	}
	var out []*cnp.ClusterNetworkPolicy
	for i, a := range allowed {
		if _, err := metav1.LabelSelectorAsSelector(&a.Pods); err != nil {
			return nil, fmt.Errorf("management guard selector %s: %w", a, err)
		}
		out = append(out, &cnp.ClusterNetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: cnp.GroupVersion.String(), Kind: cnp.Kind},
			ObjectMeta: meta(owner.AllowName(i + 1)),
			Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: guardPassPriority,
				Subject: cnp.Subject{Pods: &cnp.NamespacedPod{
					NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": a.Namespace}},
					PodSelector:       a.Pods,
				}},
				Egress: []cnp.EgressRule{{Name: "management-network-exempt", Action: cnp.Pass, To: []cnp.EgressPeer{{Networks: nets}}}},
			},
		})
	}
	out = append(out, &cnp.ClusterNetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: cnp.GroupVersion.String(), Kind: cnp.Kind},
		ObjectMeta: meta(owner.DenyName()),
		Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: guardDenyPriority,
			Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
			Egress:  []cnp.EgressRule{{Name: "management-network", Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: nets}}}},
		},
	})
	return out, nil
}
