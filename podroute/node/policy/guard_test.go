package policy

import (
	"fmt"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/t1route/t1route/podroute/node/policy/ofsim"

	"github.com/t1route/t1route/podroute/node/pipeline"

	"github.com/t1route/t1route/podroute/guard"

	"github.com/t1route/t1route/podroute/config"
)

// The guard's policies, compiled and rendered like any others: the vSphere
// pods reach the management network, no other pod does, other destinations
// are untouched, and a NetworkPolicy still binds the vSphere pods.
func TestManagementGuard(t *testing.T) {
	mgmt := netip.MustParsePrefix("203.0.113.0/28")
	extra, err := config.ParseGuardSelector("tools:app=backup")
	if err != nil {
		t.Fatal(err)
	}
	policies, err := guard.ManagementGuard([]netip.Prefix{mgmt}, append(config.DefaultGuardSelectors(), extra))
	if err != nil {
		t.Fatal(err)
	}
	if len(policies) != 4 || policies[3].Name != "t1route-management-guard-deny" || policies[3].Spec.Priority != 1 {
		t.Fatalf("want 3 exemptions and a deny, got %d policies", len(policies))
	}
	c := NewCluster()
	for _, ns := range []string{"kube-system", "tools", "x"} {
		c.SetNamespace(&Namespace{Name: ns, Labels: map[string]string{"kubernetes.io/metadata.name": ns}})
	}
	pods := []*Pod{
		{Namespace: "kube-system", Name: "csi-node", Labels: map[string]string{"app": "vsphere-csi-node"}},
		{Namespace: "kube-system", Name: "csi-controller", Labels: map[string]string{"app": "vsphere-csi-controller"}},
		{Namespace: "kube-system", Name: "cpi", Labels: map[string]string{"k8s-app": "vsphere-cloud-controller-manager"}},
		{Namespace: "tools", Name: "backup", Labels: map[string]string{"app": "backup"}},
		{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}},
		{Namespace: "x", Name: "csi-lookalike", Labels: map[string]string{"app": "vsphere-csi-node"}}, // right label, wrong namespace
		{Namespace: "x", Name: "web", Labels: map[string]string{"app": "web"}},
	}
	for i, p := range pods {
		p.Node = "n1"
		p.IPs = []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 1, byte(10 + i)})}
		c.SetPod(p)
	}
	for _, p := range policies {
		c.SetClusterNetworkPolicy(p)
	}
	run := func(t *testing.T) map[string]bool {
		rs := Compile(c, "n1")
		if len(rs.Problems) > 0 {
			t.Fatal(rs.Problems)
		}
		local := localPods(c, "n1")
		fs := pipeline.RenderPolicy(rs, local, pipeline.PolicyNode{GatewayPort: 1}, pipeline.PolicyOptions{Tables: testTables, Zone: 7})
		sw, err := ofsim.Parse(fs.Flows)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, lp := range local {
			for _, dst := range []string{"203.0.113.5", "203.0.113.100"} {
				res, err := sw.Run(ofsim.Packet{InPort: lp.OFPort, Src: lp.IPs[0], Dst: netip.MustParseAddr(dst), Proto: 6, DstPort: 443, CT: ofsim.CT{New: true}},
					testTables.Conntrack, testTables.Next)
				if err != nil {
					t.Fatal(err)
				}
				out[lp.Key+" -> "+dst] = res.Forwarded
			}
		}
		return out
	}
	got := run(t)
	for key, want := range map[string]bool{
		"kube-system/csi-node -> 203.0.113.5": true, "kube-system/csi-controller -> 203.0.113.5": true,
		"kube-system/cpi -> 203.0.113.5": true, "tools/backup -> 203.0.113.5": true,
		"kube-system/coredns -> 203.0.113.5": false, "x/csi-lookalike -> 203.0.113.5": false, "x/web -> 203.0.113.5": false,
		"x/web -> 203.0.113.100": true, "kube-system/coredns -> 203.0.113.100": true,
	} {
		if got[key] != want {
			t.Errorf("%s: forwarded %v, want %v", key, got[key], want)
		}
	}
	// Pass, not Accept: kube-system's own default-deny egress still applies.
	c.SetNetworkPolicy(netpol("kube-system", "deny-egress", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}))
	if run(t)["kube-system/csi-node -> 203.0.113.5"] {
		t.Error("the guard's exemption overrode a NetworkPolicy denying the CSI pod's egress")
	}
	if none, err := guard.ManagementGuard(nil, config.DefaultGuardSelectors()); err != nil || none != nil {
		t.Errorf("no CIDR must render no guard: %v %v", none, err)
	}
}

// The kernel's copy of the guard reads the same policies: the guarded
// networks, and the exempt pods on every node (not only this one's); a
// policy without the guard's labels is not the guard, and an exemption
// whose subject cannot be read exempts nobody.
func TestHostGuard(t *testing.T) {
	mgmt := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28"), netip.MustParsePrefix("2001:db8:113::/64")}
	policies, err := guard.ManagementGuard(mgmt, config.DefaultGuardSelectors())
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster()
	for _, ns := range []string{"kube-system", "x"} {
		c.SetNamespace(&Namespace{Name: ns, Labels: map[string]string{"kubernetes.io/metadata.name": ns}})
	}
	for i, p := range []*Pod{
		{Namespace: "kube-system", Name: "csi-node-a", Node: "n1", Labels: map[string]string{"app": "vsphere-csi-node"}},
		{Namespace: "kube-system", Name: "csi-node-b", Node: "n2", Labels: map[string]string{"app": "vsphere-csi-node"}},
		{Namespace: "x", Name: "csi-lookalike", Node: "n1", Labels: map[string]string{"app": "vsphere-csi-node"}},
		{Namespace: "x", Name: "web", Node: "n2", Labels: map[string]string{"app": "web"}},
	} {
		p.IPs = []netip.Addr{netip.AddrFrom4([4]byte{100, 96, byte(1 + i%2), byte(10 + 2*i)})}
		c.SetPod(p)
	}
	if spec := HostGuard(c); len(spec.Networks) != 0 || len(spec.Allowed) != 0 {
		t.Fatalf("a guard without its policies: %+v", spec)
	}
	for _, p := range policies {
		c.SetClusterNetworkPolicy(p)
	}
	clone := func(p *cnp.ClusterNetworkPolicy) *cnp.ClusterNetworkPolicy {
		u, err := cnp.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := cnp.FromUnstructured(u)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	notGuard := clone(policies[len(policies)-1])
	notGuard.Name, notGuard.Labels = "someone-elses-deny", nil
	notGuard.Spec.Egress[0].To[0].Networks = []string{"198.51.100.0/24"}
	c.SetClusterNetworkPolicy(notGuard)
	spec := HostGuard(c)
	if got := fmt.Sprint(spec.Networks); got != "[203.0.113.0/28 2001:db8:113::/64]" {
		t.Errorf("networks %s", got)
	}
	if got := fmt.Sprint(spec.Allowed); got != "[100.96.1.10/32 100.96.2.12/32]" {
		t.Errorf("allowed %s, want both CSI node pods and nothing else", got)
	}
	var broken *cnp.ClusterNetworkPolicy
	for _, p := range policies {
		if p.Spec.Subject.Pods != nil && len(p.Spec.Subject.Pods.PodSelector.MatchExpressions) > 0 {
			broken = clone(p)
		}
	}
	if broken == nil {
		t.Fatal("no guard exemption for the CSI node pods")
	}
	broken.Spec.Subject.Pods.PodSelector.MatchExpressions[0].Operator = "Bogus"
	c.SetClusterNetworkPolicy(broken)
	spec = HostGuard(c)
	if len(spec.Problems) == 0 || len(spec.Allowed) != 0 || len(spec.Networks) != 2 {
		t.Errorf("an unreadable exemption must exempt nobody (and say so), the networks stay guarded: %+v", spec)
	}
}
