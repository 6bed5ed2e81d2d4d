package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/t1route/t1route/podroute/policy"
)

// GuardSettings configure the management-network guard: pods may not reach
// CIDRs, except those Allowed selects (policy.ManagementGuard).
type GuardSettings struct {
	CIDRs []netip.Prefix
	// Allowed is policy.DefaultGuardSelectors (the vSphere cloud provider
	// and CSI driver) plus NSXT_MANAGEMENT_ALLOWED_PODS; empty without CIDRs.
	Allowed []policy.GuardSelector
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
		p.cfg.Guard.CIDRs = append(p.cfg.Guard.CIDRs, pfx.Masked())
	}
	if len(p.cfg.Guard.CIDRs) == 0 {
		p.bad(varMgmtCIDR, "holds no CIDR")
		return
	}
	p.cfg.Guard.Allowed = policy.DefaultGuardSelectors()
	for _, s := range splitList(allowed) {
		g, err := policy.ParseGuardSelector(s)
		if err != nil {
			p.bad(varMgmtAllowed, err.Error())
			continue
		}
		p.cfg.Guard.Allowed = append(p.cfg.Guard.Allowed, g)
	}
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
