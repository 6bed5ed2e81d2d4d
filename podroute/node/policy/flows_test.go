package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/node/policy/cnp"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

func localPods(c *Cluster, node string) []pipeline.LocalPod {
	var out []pipeline.LocalPod
	port := 10
	for _, key := range sortedKeys(c.podsByNode[node]) {
		p := c.podsByNode[node][key]
		port++
		out = append(out, pipeline.LocalPod{Key: key, OFPort: port, IPs: p.IPs})
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func render(c *Cluster, node string) *pipeline.FlowSet {
	return pipeline.RenderPolicy(Compile(c, node), localPods(c, node), pipeline.PolicyNode{GatewayPort: 1, Addrs: []netip.Addr{netip.MustParseAddr("100.96.1.1")}},
		pipeline.PolicyOptions{Tables: testTables, Zone: 7})
}

func TestRenderBase(t *testing.T) {
	fs := render(fixture(), "n1")
	want := []string{
		"table=1,priority=0,cookie=0x7470000000000000 actions=drop",
		"table=1,priority=100,cookie=0x7470000000000000,ip actions=ct(table=2,zone=7,nat)",
		"table=1,priority=100,cookie=0x7470000000000000,ipv6 actions=ct(table=2,zone=7,nat)",
		"table=2,priority=0,cookie=0x7470000000000000 actions=goto_table:3",
		"table=2,priority=180,cookie=0x7470000000000000,in_port=1,ip,nw_src=100.96.1.1 actions=goto_table:20",
		"table=2,priority=190,cookie=0x7470000000000000,ct_state=+new+trk,in_port=1,ip,nw_src=100.96.1.1 actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2])),goto_table:20",
		"table=2,priority=195,cookie=0x7470000000000000,ct_state=+rel+trk,ct_mark=0x2/0x3 actions=drop",
		"table=2,priority=195,cookie=0x7470000000000000,ct_state=+rpl+trk,ct_mark=0x2/0x3 actions=drop",
		"table=2,priority=200,cookie=0x7470000000000000,ct_state=+est+rpl+trk,ct_mark=0x1/0x1 actions=goto_table:20",
		"table=2,priority=200,cookie=0x7470000000000000,ct_state=+rel+trk,ct_mark=0x1/0x1 actions=goto_table:20",
		"table=2,priority=210,cookie=0x7470000000000000,ct_state=+est+rpl+trk,ct_mark=0x5/0x5 actions=load:0x1->NXM_NX_REG0[1],goto_table:20",
		"table=2,priority=210,cookie=0x7470000000000000,ct_state=+rel+trk,ct_mark=0x5/0x5 actions=load:0x1->NXM_NX_REG0[1],goto_table:20",
		"table=3,priority=0,cookie=0x7470000000000000 actions=goto_table:4",
		"table=4,priority=0,cookie=0x7470000000000000 actions=goto_table:5",
		"table=5,priority=0,cookie=0x7470000000000000 actions=goto_table:6",
		"table=6,priority=0,cookie=0x7470000000000000 actions=goto_table:7",
		"table=7,priority=0,cookie=0x7470000000000000 actions=goto_table:8",
		"table=8,priority=0,cookie=0x7470000000000000 actions=goto_table:9",
		"table=9,priority=0,cookie=0x7470000000000000 actions=goto_table:20",
		"table=9,priority=100,cookie=0x7470000000000000,ct_state=+new+trk,in_port=1,ip actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2])),goto_table:20",
		"table=9,priority=100,cookie=0x7470000000000000,ct_state=+new+trk,in_port=1,ipv6 actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2])),goto_table:20",
		"table=9,priority=70,cookie=0x7470000000000000,ct_state=-new+est-rpl+trk,ct_mark=0/0x1,ip actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0])),goto_table:20",
		"table=9,priority=70,cookie=0x7470000000000000,ct_state=-new+est-rpl+trk,ct_mark=0/0x1,ipv6 actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0])),goto_table:20",
		"table=9,priority=80,cookie=0x7470000000000000,ct_state=-new+est-rpl+trk,ct_mark=0/0x1,in_port=1,ip actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2])),goto_table:20",
		"table=9,priority=80,cookie=0x7470000000000000,ct_state=-new+est-rpl+trk,ct_mark=0/0x1,in_port=1,ipv6 actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2])),goto_table:20",
		"table=9,priority=90,cookie=0x7470000000000000,ct_state=+new+trk,ip actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0])),goto_table:20",
		"table=9,priority=90,cookie=0x7470000000000000,ct_state=+new+trk,ipv6 actions=ct(commit,zone=7,exec(load:0x1->NXM_NX_CT_MARK[0])),goto_table:20",
	}
	if strings.Join(fs.Flows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("without policies:\n%s\nwant:\n%s", strings.Join(fs.Flows, "\n"), strings.Join(want, "\n"))
	}
	if pipeline.BaseFlows != len(want)-2 { // two node-address flows per address
		t.Fatalf("BaseFlows = %d, but the stage without policy or node addresses has %d", pipeline.BaseFlows, len(want)-2)
	}
}

// A rule's flows grow with subjects + peers + ports (one conjunction), not
// with their product.
func TestRenderConjunctionGrowsWithSum(t *testing.T) {
	for _, size := range [][3]int{{1, 1, 1}, {5, 20, 3}, {20, 50, 10}} {
		subjects, peers, ports := size[0], size[1], size[2]
		c := NewCluster()
		c.SetNamespace(&Namespace{Name: "x", Labels: map[string]string{"kubernetes.io/metadata.name": "x"}})
		for i := range subjects {
			c.SetPod(&Pod{Namespace: "x", Name: fmt.Sprintf("s%d", i), Node: "n1", Labels: map[string]string{"role": "subject"},
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 1, byte(10 + i)})}})
		}
		for i := range peers {
			c.SetPod(&Pod{Namespace: "x", Name: fmt.Sprintf("p%d", i), Node: "n2", Labels: map[string]string{"role": "peer"},
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 2, byte(10 + 2*i)})}}) // not adjacent: no aggregation
		}
		var npPorts []networkingv1.NetworkPolicyPort
		for i := range ports {
			p := intstr.FromInt32(int32(1000 + 2*i)) // not adjacent: no merging
			npPorts = append(npPorts, networkingv1.NetworkPolicyPort{Port: &p})
		}
		c.SetNetworkPolicy(netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("role", "subject"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "peer")}}, Ports: npPorts}}}))
		fs := render(c, "n1")
		isolation := subjects
		want := pipeline.BaseFlows + 2 + subjects + peers + ports + 1 + isolation
		if len(fs.Flows) != want || fs.Rules != 1 {
			t.Errorf("%d subjects, %d peers, %d ports: %d flows for %d rules, want %d for 1", subjects, peers, ports, len(fs.Flows), fs.Rules, want)
		}
	}
}

// Adding a policy leaves the flows of the others alone, so replace-flows
// touches only what changed.
func TestRenderStableIDs(t *testing.T) {
	c := fixture()
	c.SetNetworkPolicy(netpol("x", "first", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24"}}}}}}))
	before := render(c, "n1")
	if again := render(c, "n1"); strings.Join(again.Flows, "\n") != strings.Join(before.Flows, "\n") {
		t.Fatal("two renders of one input differ")
	}
	c.SetNetworkPolicy(netpol("x", "second", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.51.100.0/24"}}}}}}))
	after := render(c, "n1")
	for _, f := range before.Flows {
		if strings.Contains(f, "conj_id=") && !slices.Contains(after.Flows, f) {
			t.Errorf("flow changed by an unrelated policy: %s", f)
		}
	}
	if len(after.Flows) <= len(before.Flows) {
		t.Error("the second policy added no flows")
	}
}

// ovs-ofctl itself must accept every flow unchanged (it silently drops a
// field whose prerequisites are missing, so its warnings count as failure).
func TestRenderedFlowsParseInOVS(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed (apt-get install -y openvswitch-switch); the e2e test loads these flows into OVS too")
	}
	var all []string
	for seed := range uint64(20) {
		w := newRefWorld(rand.New(rand.NewPCG(seed, 14)))
		_, flows := w.switches(t)
		all = append(all, flows["n1"]...)
	}
	c := fixture()
	c.SetClusterNetworkPolicy(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ranges"}, Spec: cnp.Spec{Tier: cnp.AdminTier,
		Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}}, Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: &metav1.LabelSelector{}}},
			Protocols: []cnp.Protocol{{SCTP: &cnp.PortMatch{DestinationPort: &cnp.Port{Range: &cnp.PortRange{Start: 3, End: 60000}}}}}}}}})
	all = append(all, render(c, "n1").Flows...)
	file := filepath.Join(t.TempDir(), "flows")
	if err := os.WriteFile(file, []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "parse-flows", file).CombinedOutput()
	if err != nil || strings.Contains(string(out), "normalization changed") || strings.Count(string(out), "OFPT_FLOW_MOD") != len(all) {
		t.Fatalf("ovs-ofctl parse-flows: %v\n%s", err, lastLines(string(out), 20))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pods not attached yet render nothing; attached ones without a rule render
// nothing either; counters name the policy of each rule and drop.
func TestRenderCountersAndUnattachedPods(t *testing.T) {
	c := fixture()
	c.SetNetworkPolicy(netpol("x", "deny-all", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}))
	c.SetClusterNetworkPolicy(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-smtp"}, Spec: cnp.Spec{Tier: cnp.AdminTier,
		Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}}, Egress: []cnp.EgressRule{{Name: "smtp", Action: cnp.Deny,
			To: []cnp.EgressPeer{{Networks: []string{"0.0.0.0/0"}}}, Protocols: []cnp.Protocol{{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Number: 25}}}}}}}})
	rs := Compile(c, "n1")
	only := []pipeline.LocalPod{{Key: "x/a", OFPort: 11, IPs: []netip.Addr{netip.MustParseAddr("100.96.1.2")}}} // x/b not attached yet
	fs := pipeline.RenderPolicy(rs, only, pipeline.PolicyNode{}, pipeline.PolicyOptions{Tables: testTables, Zone: 7})
	var got []string
	for _, cnt := range fs.Counters {
		got = append(got, fmt.Sprintf("%s %s %s isolation=%v", cnt.Policy, cnt.Direction, cnt.Action, cnt.Isolation))
	}
	slices.Sort(got)
	want := []string{
		"ClusterNetworkPolicy no-smtp egress Deny isolation=false",
		"NetworkPolicy x/deny-all egress Deny isolation=true",
		"NetworkPolicy x/deny-all ingress Deny isolation=true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("counters:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range fs.Flows {
		if strings.Contains(f, "100.96.1.3") {
			t.Errorf("a flow for the pod that is not attached: %s", f)
		}
	}
	for cookie := range fs.Counters {
		n := 0
		for _, f := range fs.Flows {
			if strings.Contains(f, fmt.Sprintf("cookie=%#x,", cookie)) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("counter %#x has no flow", cookie)
		}
	}
}
