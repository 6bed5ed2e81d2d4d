package config

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The management guard denies every pod's egress to NSXT_MANAGEMENT_CIDR,
// except the pods NSXT_MANAGEMENT_ALLOWED_PODS names. Settings that turn it
// into something else are refused (exit 2), each problem naming the
// variable and the consequence:
//   - a CIDR wider than /8 (IPv4) or /32 (IPv6), or CIDRs that together
//     cover a whole address family (0.0.0.0/1,128.0.0.0/1): that denies
//     pods far more than a management network, up to all their egress;
//   - a CIDR overlapping CLUSTER_CIDR (equal, inside or around it): pods
//     would be cut off from other pods;
//   - an invalid namespace name, or a selector with no positive
//     requirement (only !key, key!=v, key notin (...)): it exempts every pod
//     of the namespace that lacks a label, in practice the whole namespace.
// One case is only warned about, since it can be right: a dual-stack
// cluster whose NSXT_MANAGEMENT_CIDR lacks one family (many management
// networks are IPv4 only; if this one is not, pods reach it over the other
// family unguarded, and the warning says so).

// Narrowest a management CIDR may be: a /8 or /32 is already far more than
// a vCenter management network.
const (
	maxMgmtBits4 = 8
	maxMgmtBits6 = 32
)

// checkGuardCIDR reports why pfx (masked) may not be a management CIDR, or "".
func checkGuardCIDR(pfx netip.Prefix, clusterCIDRs []netip.Prefix) string {
	minBits := maxMgmtBits4
	if pfx.Addr().Is6() {
		minBits = maxMgmtBits6
	}
	if pfx.Bits() < minBits {
		return fmt.Sprintf("%s is wider than /%d: the guard would deny every pod egress to far more than a management network; give the management network itself", pfx, minBits)
	}
	for _, c := range clusterCIDRs {
		if c.Overlaps(pfx) {
			return fmt.Sprintf("%s overlaps CLUSTER_CIDR %s: the guard would cut pods off from other pods; give the management network, outside the pod range", pfx, c)
		}
	}
	return ""
}

// coversFamily reports the address family (4 or 6) that cidrs cover
// whole together, or 0.
func coversFamily(cidrs []netip.Prefix) int {
	for _, fam := range []int{4, 6} {
		var mine []netip.Prefix
		for _, c := range cidrs {
			if c.Addr().Is4() == (fam == 4) {
				mine = append(mine, c)
			}
		}
		total := new(big.Int).Lsh(big.NewInt(1), uint(map[int]int{4: 32, 6: 128}[fam]))
		if covered(mine).Cmp(total) == 0 {
			return fam
		}
	}
	return 0
}

// covered is how many addresses cidrs cover, overlaps counted once.
func covered(cidrs []netip.Prefix) *big.Int {
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits() // the wider first
	})
	sum := new(big.Int)
	var last netip.Prefix
	for _, c := range cidrs {
		if last.IsValid() && last.Contains(c.Addr()) && last.Bits() <= c.Bits() {
			continue // inside the one before (sorted by start, wider first)
		}
		sum.Add(sum, new(big.Int).Lsh(big.NewInt(1), uint(c.Addr().BitLen()-c.Bits())))
		last = c
	}
	return sum
}

// missingFamilyNote is the warning for a dual-stack cluster whose
// management CIDRs lack a family, or "".
func missingFamilyNote(mgmt, clusterCIDRs []netip.Prefix) string {
	has := func(list []netip.Prefix, v4 bool) bool {
		return slices.ContainsFunc(list, func(p netip.Prefix) bool { return p.Addr().Is4() == v4 })
	}
	for _, v4 := range []bool{true, false} {
		if has(clusterCIDRs, v4) && !has(mgmt, v4) && has(clusterCIDRs, !v4) {
			fam, other := "IPv6", "IPv4"
			if v4 {
				fam, other = "IPv4", "IPv6"
			}
			return fmt.Sprintf("NSXT_MANAGEMENT_CIDR has no %s CIDR but the cluster is dual-stack: if the management network has %s addresses, pods reach it over %s unguarded; add its %s CIDR (the guard covers only %s now)",
				fam, fam, fam, fam, other)
		}
	}
	return ""
}

// checkGuardSelector reports why g may not exempt pods from the guard, or "".
func checkGuardSelector(g GuardSelector, raw string) string {
	if errs := validation.IsDNS1123Label(g.Namespace); len(errs) > 0 {
		return fmt.Sprintf("%q: namespace %q is not a valid namespace name: %s", raw, g.Namespace, errs[0])
	}
	positive := len(g.Pods.MatchLabels) > 0 || slices.ContainsFunc(g.Pods.MatchExpressions, func(r metav1.LabelSelectorRequirement) bool {
		return r.Operator == metav1.LabelSelectorOpIn || r.Operator == metav1.LabelSelectorOpExists
	})
	if !positive {
		sel := strings.TrimSpace(metav1.FormatLabelSelector(&g.Pods))
		return fmt.Sprintf("%q: selector %q names no label the pods must have, so it exempts every pod of namespace %s without such a label, in practice the whole namespace; "+
			"select the pods by a label they carry (key=value, key in (...), or key)", raw, sel, g.Namespace)
	}
	return ""
}
