package policy

import (
	"net/netip"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/t1route/t1route/podroute/policy/ofsim"
	"github.com/t1route/t1route/podroute/policy/rules"
)

func TestParseGuardSelector(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"kube-system:app=my-agent", "kube-system:app=my-agent", ""},
		{" tools : team in (storage, backup) ", "tools:team in (backup,storage)", ""},
		{"kube-system", "", "want <namespace>:<label selector>"},
		{":app=x", "", "want <namespace>:<label selector>"},
		{"kube-system:", "", "want <namespace>:<label selector>"},
		{"kube-system:app in (", "", "management guard selector"},
	}
	for _, tc := range cases {
		g, err := ParseGuardSelector(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.ReplaceAll(g.String(), " ", "") != strings.ReplaceAll(tc.want, " ", "") {
			t.Errorf("%q: %v, %v; want %s", tc.in, g, err, tc.want)
		}
	}
}

// The guard's policies, compiled and rendered like any others: the vSphere
// pods reach the management network, no other pod does, other destinations
// are untouched, and a NetworkPolicy still binds the vSphere pods.
func TestManagementGuard(t *testing.T) {
	mgmt := netip.MustParsePrefix("203.0.113.0/28")
	extra, err := ParseGuardSelector("tools:app=backup")
	if err != nil {
		t.Fatal(err)
	}
	policies, err := ManagementGuard([]netip.Prefix{mgmt}, append(DefaultGuardSelectors(), extra))
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
		fs := rules.Render(rs, local, rules.Node{GatewayPort: 1}, rules.Options{Tables: testTables, Zone: 7})
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
	if none, err := ManagementGuard(nil, DefaultGuardSelectors()); err != nil || none != nil {
		t.Errorf("no CIDR must render no guard: %v %v", none, err)
	}
}
