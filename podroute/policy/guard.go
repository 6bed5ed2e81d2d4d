package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/podroute/policy/cnp"
)

// GuardSelector names pods that may reach the management network.
type GuardSelector struct {
	Namespace string
	Pods      metav1.LabelSelector
}

func (g GuardSelector) String() string {
	return g.Namespace + ":" + metav1.FormatLabelSelector(&g.Pods)
}

// DefaultGuardSelectors are the pods VMware's guidance for routable pods
// lets reach vCenter: the vSphere cloud provider and the vSphere CSI
// driver, in kube-system.
func DefaultGuardSelectors() []GuardSelector {
	return []GuardSelector{
		{Namespace: "kube-system", Pods: metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "vsphere-cloud-controller-manager"}}},
		{Namespace: "kube-system", Pods: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"vsphere-csi-node", "vsphere-csi-controller"}}}}},
	}
}

// ParseGuardSelector reads "<namespace>:<label selector>", e.g.
// "kube-system:app=my-backup-agent" or "tools:team in (storage)".
func ParseGuardSelector(s string) (GuardSelector, error) {
	ns, sel, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || ns == "" || strings.TrimSpace(sel) == "" {
		return GuardSelector{}, fmt.Errorf("management guard selector %q: want <namespace>:<label selector>, e.g. kube-system:app=my-agent", s)
	}
	ls, err := metav1.ParseToLabelSelector(sel)
	if err != nil {
		return GuardSelector{}, fmt.Errorf("management guard selector %q: %w", s, err)
	}
	return GuardSelector{Namespace: ns, Pods: *ls}, nil
}

// GuardLabels mark the guard's policies: what podroute/guard selects, and
// the only ClusterNetworkPolicies it changes or deletes.
var GuardLabels = map[string]string{"app.kubernetes.io/managed-by": "t1route", "app.kubernetes.io/component": "management-guard"}

// Names and priorities of the guard's policies: the highest precedence of
// the Admin tier, so no other policy can open the management network.
const (
	GuardPolicyPrefix = "t1route-management-guard"
	guardPassPriority = 0
	guardDenyPriority = 1
)

// ManagementGuard renders the management-network guard as Admin-tier
// ClusterNetworkPolicies: one per allowed selector passing its pods'
// egress to cidrs on to NetworkPolicy (as if there were no guard), then one
// denying every pod's egress to cidrs. Pass rather than Accept: the guard
// exempts these pods but grants them nothing that NetworkPolicy or the
// Baseline tier deny. Host-network pods are never subject to pod policy.
func ManagementGuard(cidrs []netip.Prefix, allowed []GuardSelector) ([]*cnp.ClusterNetworkPolicy, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	var nets []string
	for _, c := range cidrs {
		if !c.IsValid() {
			return nil, fmt.Errorf("management CIDR %v is not valid", c)
		}
		nets = append(nets, c.Masked().String())
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: maps.Clone(GuardLabels)}
	}
	var out []*cnp.ClusterNetworkPolicy
	for i, a := range allowed {
		if _, err := metav1.LabelSelectorAsSelector(&a.Pods); err != nil {
			return nil, fmt.Errorf("management guard selector %s: %w", a, err)
		}
		out = append(out, &cnp.ClusterNetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: cnp.GroupVersion.String(), Kind: cnp.Kind},
			ObjectMeta: meta(fmt.Sprintf("%s-allow-%d", GuardPolicyPrefix, i+1)),
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
		ObjectMeta: meta(GuardPolicyPrefix + "-deny"),
		Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: guardDenyPriority,
			Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
			Egress:  []cnp.EgressRule{{Name: "management-network", Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: nets}}}},
		},
	})
	return out, nil
}
