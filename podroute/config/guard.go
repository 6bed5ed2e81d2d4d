package config

import (
	"fmt"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxGuardSelectors is the most allowed selectors a guard has (the defaults
// included): its policies' names are fixed in advance (guard.Owner.Names),
// so that the controller's RBAC can grant exactly those and no other
// ClusterNetworkPolicy.
const MaxGuardSelectors = 16

// GuardSettings configure the management-network guard: pods may not reach
// CIDRs, except those Allowed selects (guard.ManagementGuard).
type GuardSettings struct {
	CIDRs []netip.Prefix
	// Allowed is DefaultGuardSelectors (the vSphere cloud provider
	// and CSI driver) plus NSXT_MANAGEMENT_ALLOWED_PODS; empty without CIDRs.
	Allowed []GuardSelector
}

func (p *parser) guardSettings() {
	cidrs, hasCIDRs := p.str(varMgmtCIDR)
	allowed, hasAllowed := p.str(varMgmtAllowed)
	if !hasCIDRs {
		if hasAllowed {
			p.bad(varMgmtAllowed, "is set without NSXT_MANAGEMENT_CIDR: say which network the pods it names may reach")
		}
		return
	}
	for _, s := range splitList(cidrs) {
		pfx, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			p.bad(varMgmtCIDR, fmt.Sprintf("%q is not a CIDR", s))
			return
		case pfx.Bits() == 0:
			// Denying every pod all egress is not a management guard.
			p.bad(varMgmtCIDR, fmt.Sprintf("%q is every address: give the management network itself", s))
			return
		}
		if why := checkGuardCIDR(pfx.Masked(), p.cfg.ClusterCIDRs); why != "" { // guardcheck.go
			p.bad(varMgmtCIDR, why)
			return
		}
		p.cfg.Guard.CIDRs = append(p.cfg.Guard.CIDRs, pfx.Masked())
	}
	if len(p.cfg.Guard.CIDRs) == 0 {
		p.bad(varMgmtCIDR, "holds no CIDR")
		return
	}
	if fam := coversFamily(p.cfg.Guard.CIDRs); fam != 0 {
		p.bad(varMgmtCIDR, fmt.Sprintf("together covers every IPv%d address: the guard would deny every pod all IPv%d egress; give the management network itself", fam, fam))
		return
	}
	if note := missingFamilyNote(p.cfg.Guard.CIDRs, p.cfg.ClusterCIDRs); note != "" {
		p.cfg.Notes = append(p.cfg.Notes, note)
	}
	p.cfg.Guard.Allowed = DefaultGuardSelectors()
	for _, s := range splitList(allowed) {
		g, err := ParseGuardSelector(s)
		if err != nil {
			p.bad(varMgmtAllowed, err.Error())
			continue
		}
		if why := checkGuardSelector(g, s); why != "" {
			p.bad(varMgmtAllowed, why)
			continue
		}
		p.cfg.Guard.Allowed = append(p.cfg.Guard.Allowed, g)
	}
	// The guard's policy names, which the controller's RBAC grants, are fixed in advance.
	if n := len(p.cfg.Guard.Allowed); n > MaxGuardSelectors {
		p.bad(varMgmtAllowed, fmt.Sprintf("names %d selectors: at most %d besides the vSphere cloud provider's and CSI driver's; combine selectors of one namespace (app in (a,b))",
			n-len(DefaultGuardSelectors()), MaxGuardSelectors-len(DefaultGuardSelectors())))
	}
}

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

// splitList splits a comma-separated value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
