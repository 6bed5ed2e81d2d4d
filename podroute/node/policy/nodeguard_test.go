package policy

import (
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"strconv"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/pipeline"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/ofsim"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// The pipeline's own guard (the agent's configured management CIDRs): it
// denies every pod the management network whatever the policy rules say,
// with no rules at all (a node starting, a rules file gone), and lets
// through only the pods the guard's own policies exempt in the rules in
// force; replies to the management network and the node's traffic pass.
func TestNodeGuardNeedsNoRules(t *testing.T) {
	mgmt := netip.MustParsePrefix("203.0.113.0/28")
	policies, err := guard.ManagementGuard([]netip.Prefix{mgmt}, config.DefaultGuardSelectors())
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster()
	for _, ns := range []string{"kube-system", "x"} {
		c.SetNamespace(&Namespace{Name: ns, Labels: map[string]string{"kubernetes.io/metadata.name": ns}})
	}
	pods := []*Pod{
		{Namespace: "kube-system", Name: "csi-node", Labels: map[string]string{"app": "vsphere-csi-node"}},
		{Namespace: "x", Name: "web", Labels: map[string]string{"app": "web"}},
	}
	for i, p := range pods {
		p.Node, p.IPs = "n1", []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 1, byte(10 + i)})}
		c.SetPod(p)
	}
	gw := pipeline.Gateway{OFPort: 1, MAC: "02:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1")}}
	var ports []pipeline.PodPort
	for _, lp := range localPods(c, "n1") {
		ports = append(ports, pipeline.PodPort{Name: "p" + strconv.Itoa(lp.OFPort), Key: lp.Key, OFPort: lp.OFPort, MAC: "02:00:00:00:00:0a", IPs: lp.IPs})
	}
	portOf := map[string]pipeline.PodPort{}
	for _, p := range ports {
		portOf[p.Key] = p
	}
	g := pipeline.Guard{CIDRs: []netip.Prefix{mgmt}}
	// What a packet meets, from the policy stage's first table to forwarding.
	forwarded := func(t *testing.T, rs *rules.Set, p ofsim.Packet) bool {
		t.Helper()
		all := pipeline.Render(pipeline.Input{Gateway: gw, Pods: ports, Policy: rs, Guard: g}).Flows
		// The policy stage's tables (2-16, the guard's 9 among them) to forwarding (20): what
		// ofsim models. Without Services a new connection skips the service
		// stage (its resubmits, which ofsim does not model) for the guard.
		var stage []string
		for _, f := range all {
			n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(f, ",", 2)[0], "table="))
			stageTable := n >= 2 && n <= 16 && (n < 4 || n > 8) && !strings.Contains(f, "resubmit(")
			if stageTable || (n == 17 && strings.Contains(f, "priority=0 ")) { // and the hairpin table's way on to forwarding

				stage = append(stage, f)
			}
		}
		sw, err := ofsim.Parse(stage)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sw.Run(p, 2, 20)
		if err != nil {
			t.Fatal(err)
		}
		return res.Forwarded
	}
	toMgmt := func(key string, ct ofsim.CT) ofsim.Packet {
		pp := portOf[key]
		return ofsim.Packet{InPort: pp.OFPort, Src: pp.IPs[0], Dst: netip.MustParseAddr("203.0.113.5"), Proto: 6, DstPort: 443, CT: ct}
	}
	newConn := ofsim.CT{New: true}
	elsewhere := func(key string) ofsim.Packet {
		p := toMgmt(key, newConn)
		p.Dst = netip.MustParseAddr("203.0.113.100")
		return p
	}

	// A permissive ClusterNetworkPolicy (Admin Accept everything, priority 0)
	// that the guard must still stand above.
	acceptAll := &cnp.ClusterNetworkPolicy{}
	acceptAll.Name = "allow-everything"
	acceptAll.Spec = cnp.Spec{Tier: cnp.AdminTier, Priority: 0, Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
		Egress: []cnp.EgressRule{{Name: "all", Action: cnp.Accept, To: []cnp.EgressPeer{{Networks: []string{"0.0.0.0/0"}}}}}}

	withGuardPolicies := func() *rules.Set {
		for _, p := range policies {
			c.SetClusterNetworkPolicy(p)
		}
		return Compile(c, "n1")
	}
	for _, tc := range []struct {
		name  string
		rules func() *rules.Set
		want  map[string]bool // packet -> forwarded
	}{
		{"no rules yet (node start, rules file missing)", func() *rules.Set { return nil }, map[string]bool{
			"csi -> mgmt": false, "web -> mgmt": false, "web -> elsewhere": true, "web reply -> mgmt": true, "node -> mgmt": true}},
		{"an Admin Accept of everything, no guard policies", func() *rules.Set {
			c.SetClusterNetworkPolicy(acceptAll)
			defer c.DeleteClusterNetworkPolicy(acceptAll.Name)
			return Compile(c, "n1")
		}, map[string]bool{"csi -> mgmt": false, "web -> mgmt": false, "web -> elsewhere": true}},
		{"the guard's policies in force: the CSI pod exempt", withGuardPolicies, map[string]bool{
			"csi -> mgmt": true, "web -> mgmt": false, "web -> elsewhere": true, "web reply -> mgmt": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := tc.rules()
			gwPkt := ofsim.Packet{InPort: 1, Src: netip.MustParseAddr("198.51.100.11"), Dst: netip.MustParseAddr("203.0.113.5"), Proto: 6, DstPort: 443, CT: newConn}
			got := map[string]bool{
				"csi -> mgmt":       forwarded(t, rs, toMgmt("kube-system/csi-node", newConn)),
				"web -> mgmt":       forwarded(t, rs, toMgmt("x/web", newConn)),
				"web -> elsewhere":  forwarded(t, rs, elsewhere("x/web")),
				"web reply -> mgmt": forwarded(t, rs, toMgmt("x/web", ofsim.CT{Est: true, Rpl: true, Mark: 0x5})),
				"node -> mgmt":      forwarded(t, rs, gwPkt),
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: forwarded %v, want %v", k, got[k], want)
				}
			}
		})
	}
	if n := len(pipeline.GuardExempt(nil)); n != 0 {
		t.Errorf("no rules exempt %d pods", n)
	}
}
