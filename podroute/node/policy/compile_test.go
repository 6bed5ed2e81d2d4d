package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// fixture: namespaces x and y; pods x/a, x/b on n1 and y/a on n2.
func fixture() *Cluster {
	c := NewCluster()
	for _, ns := range []string{"x", "y"} {
		c.SetNamespace(&Namespace{Name: ns, Labels: map[string]string{"ns": ns, "kubernetes.io/metadata.name": ns}})
	}
	c.SetPod(&Pod{Namespace: "x", Name: "a", Node: "n1", Labels: map[string]string{"pod": "a"},
		IPs: []netip.Addr{netip.MustParseAddr("100.96.1.2")}, Ports: []NamedPort{{"http", rules.TCP, 80}}})
	c.SetPod(&Pod{Namespace: "x", Name: "b", Node: "n1", Labels: map[string]string{"pod": "b"},
		IPs: []netip.Addr{netip.MustParseAddr("100.96.1.3"), netip.MustParseAddr("2001:db8:96:1::3")}, Ports: []NamedPort{{"http", rules.TCP, 8080}}})
	c.SetPod(&Pod{Namespace: "y", Name: "a", Node: "n2", Labels: map[string]string{"pod": "a"},
		IPs: []netip.Addr{netip.MustParseAddr("100.96.2.2")}, Ports: []NamedPort{{"http", rules.TCP, 81}}})
	return c
}

func netpol(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// describe prints a RuleSet compactly for comparison.
func describe(rs *rules.Set) string {
	var b strings.Builder
	for _, r := range rs.Rules {
		peers, ports := "any", "any"
		if !r.AnyPeer {
			peers = fmt.Sprint(r.Peers)
		}
		if !r.AnyPort {
			ports = fmt.Sprint(r.Ports)
		}
		fmt.Fprintf(&b, "%s %s %s#%d.%d %s pods=%v peers=%s ports=%s\n", r.Direction, r.Tier, r.Policy.Name, r.Index, r.Part, r.Action, r.Pods, peers, ports)
	}
	for d, m := range rs.Isolated {
		for pod, refs := range m {
			fmt.Fprintf(&b, "isolated %s %s by %d\n", rules.Direction(d), pod, len(refs))
		}
	}
	return b.String()
}

func TestCompileNetworkPolicy(t *testing.T) {
	udp := corev1.ProtocolUDP
	port := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	end := int32(8090)
	cases := []struct {
		name string
		np   *networkingv1.NetworkPolicy
		want []string // lines of describe, in any order
	}{
		{"default deny ingress isolates every pod of the namespace on this node, with no rule",
			netpol("x", "deny", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}),
			[]string{"isolated ingress x/a by 1", "isolated ingress x/b by 1"}},
		{"default deny egress",
			netpol("x", "deny", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: []networkingv1.PolicyType{"Egress"}}),
			[]string{"isolated egress x/a by 1"}},
		{"policyTypes unset: ingress always, egress because it has egress rules",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), Egress: []networkingv1.NetworkPolicyEgressRule{{}}}),
			[]string{"isolated ingress x/a by 1", "isolated egress x/a by 1", "egress NetworkPolicy p#0.0 Accept pods=[x/a] peers=any ports=any"}},
		{"namespace and pod selector together: only pods matching both",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "b"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "a")}}}}}),
			[]string{"isolated ingress x/b by 1", "ingress NetworkPolicy p#0.0 Accept pods=[x/b] peers=[100.96.2.2/32] ports=any"}},
		{"pod selector alone stays in the policy's namespace",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "b"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "a")}}}}}),
			[]string{"isolated ingress x/b by 1", "ingress NetworkPolicy p#0.0 Accept pods=[x/b] peers=[100.96.1.2/32] ports=any"}},
		{"ipBlock with except",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.0/25"}}}}}}}),
			[]string{"isolated ingress x/a by 1", "ingress NetworkPolicy p#0.0 Accept pods=[x/a] peers=[203.0.113.128/25] ports=any"}},
		{"named port on ingress resolves per subject pod: one part per number",
			netpol("x", "p", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromString("http"))}, {Protocol: &udp, Port: port(intstr.FromInt32(53))}}}}}),
			[]string{"isolated ingress x/a by 1", "isolated ingress x/b by 1",
				"ingress NetworkPolicy p#0.0 Accept pods=[x/a x/b] peers=any ports=[UDP/53]",
				"ingress NetworkPolicy p#0.1 Accept pods=[x/a] peers=any ports=[TCP/80]",
				"ingress NetworkPolicy p#0.2 Accept pods=[x/b] peers=any ports=[TCP/8080]"}},
		{"named port on egress resolves on the destination pods",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: []networkingv1.PolicyType{"Egress"},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromString("http"))}}}}}),
			[]string{"isolated egress x/a by 1",
				"egress NetworkPolicy p#0.0 Accept pods=[x/a] peers=[100.96.1.2/32] ports=[TCP/80]",
				"egress NetworkPolicy p#0.1 Accept pods=[x/a] peers=[100.96.1.3/32 2001:db8:96:1::3/128] ports=[TCP/8080]",
				"egress NetworkPolicy p#0.2 Accept pods=[x/a] peers=[100.96.2.2/32] ports=[TCP/81]"}},
		{"a named port of the wrong protocol matches nothing, but the pod stays isolated",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: port(intstr.FromString("http"))}}}}}),
			[]string{"isolated ingress x/a by 1"}},
		{"endPort",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromInt32(8080)), EndPort: &end}}}}}),
			[]string{"isolated ingress x/a by 1", "ingress NetworkPolicy p#0.0 Accept pods=[x/a] peers=any ports=[TCP/8080-8090]"}},
		{"a policy for pods of another node adds nothing here",
			netpol("y", "p", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}),
			nil},
		{"a peer selecting nothing makes the rule match nothing",
			netpol("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "nobody")}}}}}),
			[]string{"isolated ingress x/a by 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture()
			c.SetNetworkPolicy(tc.np)
			rs := Compile(c, "n1")
			if len(rs.Problems) > 0 {
				t.Fatalf("problems: %v", rs.Problems)
			}
			got := strings.Split(strings.TrimSpace(describe(rs)), "\n")
			if describe(rs) == "" {
				got = nil
			}
			if !sameLines(got, tc.want) {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func sameLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestCompileClusterNetworkPolicy(t *testing.T) {
	all := &metav1.LabelSelector{}
	cases := []struct {
		name         string
		policies     []*cnp.ClusterNetworkPolicy
		want         []string
		wantProblems []string
	}{
		{"tiers and priorities order the rules; equal priorities go by name",
			[]*cnp.ClusterNetworkPolicy{
				{ObjectMeta: metav1.ObjectMeta{Name: "zz"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 5, Subject: cnp.Subject{Namespaces: all},
					Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: []string{"203.0.113.0/24"}}}}}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "aa"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 5, Subject: cnp.Subject{Namespaces: sel("ns", "x")},
					Egress: []cnp.EgressRule{{Action: cnp.Pass, To: []cnp.EgressPeer{{Networks: []string{"203.0.113.0/25"}}}},
						{Action: cnp.Accept, To: []cnp.EgressPeer{{Pods: &cnp.NamespacedPod{NamespaceSelector: *sel("ns", "y"), PodSelector: *all}}}}}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "base"}, Spec: cnp.Spec{Tier: cnp.BaselineTier, Priority: 0, Subject: cnp.Subject{Pods: &cnp.NamespacedPod{PodSelector: *sel("pod", "b")}},
					Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: all}},
						Protocols: []cnp.Protocol{{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Range: &cnp.PortRange{Start: 1000, End: 2000}}}}, {DestinationNamedPort: "http"}}}}}},
			},
			[]string{ // ingress first, then egress
				"ingress Baseline base#0.0 Deny pods=[x/b] peers=[100.96.1.2/31 100.96.2.2/32 2001:db8:96:1::3/128] ports=[TCP/1000-2000]",
				"ingress Baseline base#0.1 Deny pods=[x/b] peers=[100.96.1.2/31 100.96.2.2/32 2001:db8:96:1::3/128] ports=[TCP/8080]",
				"egress Admin aa#0.0 Pass pods=[x/a x/b] peers=[203.0.113.0/25] ports=any",
				"egress Admin aa#1.0 Accept pods=[x/a x/b] peers=[100.96.2.2/32] ports=any",
				"egress Admin zz#0.0 Deny pods=[x/a x/b] peers=[203.0.113.0/24] ports=any",
			}, nil},
		{"an Accept rule ignores a peer it cannot enforce",
			[]*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Subject: cnp.Subject{Namespaces: sel("ns", "x")},
				Egress: []cnp.EgressRule{{Action: cnp.Accept, To: []cnp.EgressPeer{{DomainNames: []string{"example.com"}}, {Networks: []string{"198.51.100.0/24"}}}}}}}},
			[]string{"egress Admin p#0.0 Accept pods=[x/a x/b] peers=[198.51.100.0/24] ports=any"},
			[]string{"ClusterNetworkPolicy p: egress rule 0 peer 0: domainNames peers (experimental) are not enforced by t1route: that peer matches nothing"}},
		{"a Pass or Deny rule it cannot enforce fails closed: deny everything",
			[]*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Subject: cnp.Subject{Namespaces: sel("ns", "x")},
				Egress:  []cnp.EgressRule{{Action: cnp.Pass, To: []cnp.EgressPeer{{Nodes: all}}}},
				Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{}}}}}}},
			[]string{"ingress Admin p#0.0 Deny pods=[x/a x/b] peers=any ports=any", "egress Admin p#0.0 Deny pods=[x/a x/b] peers=any ports=any"},
			[]string{"ClusterNetworkPolicy p: egress rule 0: peer 0: nodes peers (experimental) are not enforced by t1route: enforced as Deny of all traffic (fail closed)",
				"ClusterNetworkPolicy p: ingress rule 0: peer 0: a peer must set exactly one field; this one sets 0 that t1route knows: enforced as Deny of all traffic (fail closed)"}},
		{"a subject with both fields is ignored and said so",
			[]*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: cnp.Spec{Tier: cnp.AdminTier,
				Subject: cnp.Subject{Namespaces: all, Pods: &cnp.NamespacedPod{}}, Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Namespaces: all}}}}}}},
			nil, []string{"ClusterNetworkPolicy p: subject: exactly one of namespaces and pods must be set: ignored"}},
		{"an unknown tier is ignored and said so",
			[]*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: cnp.Spec{Tier: "Developer", Subject: cnp.Subject{Namespaces: all},
				Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Namespaces: all}}}}}}},
			nil, []string{`ClusterNetworkPolicy p: tier "Developer" is neither Admin nor Baseline: ignored`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture()
			for _, p := range tc.policies {
				c.SetClusterNetworkPolicy(p)
			}
			rs := Compile(c, "n1")
			got := strings.Split(strings.TrimSpace(describe(rs)), "\n")
			if describe(rs) == "" {
				got = nil
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") { // order matters here
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !sameLines(rs.Problems, tc.wantProblems) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(rs.Problems, "\n"), strings.Join(tc.wantProblems, "\n"))
			}
		})
	}
}

func TestPodFromAPI(t *testing.T) {
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"big": strings.Repeat("x", 1000)}},
		Spec: corev1.PodSpec{NodeName: "n1",
			Containers: []corev1.Container{{Name: "c", Image: "img", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 9090}}}},
			InitContainers: []corev1.Container{{Name: "sidecar", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "100.96.1.2", PodIPs: []corev1.PodIP{{IP: "100.96.1.2"}, {IP: "2001:db8:96:1::2"}}},
	}
	got := PodFromAPI(full)
	want := &Pod{Namespace: "x", Name: "a", Labels: map[string]string{"app": "web"}, Node: "n1",
		IPs:   []netip.Addr{netip.MustParseAddr("100.96.1.2"), netip.MustParseAddr("2001:db8:96:1::2")},
		Ports: []NamedPort{{"http", rules.TCP, 8080}, {"dns", rules.UDP, 53}, {"metrics", rules.TCP, 9100}}}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for name, mutate := range map[string]func(p *corev1.Pod){
		"host network": func(p *corev1.Pod) { p.Spec.HostNetwork = true },
		"succeeded":    func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded },
		"failed":       func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed },
	} {
		p := full.DeepCopy()
		mutate(p)
		if PodFromAPI(p) != nil {
			t.Errorf("%s: a pod policy never applies to was kept", name)
		}
	}
}

func TestClusterViewUpdates(t *testing.T) {
	c := fixture()
	c.SetNetworkPolicy(netpol("x", "deny", networkingv1.NetworkPolicySpec{}))
	if rs := Compile(c, "n1"); len(rs.Isolated[rules.Ingress]) != 2 {
		t.Fatalf("isolated %v", rs.Isolated)
	}
	// A pod moving nodes (a new pod of the same name) leaves the old node's index.
	c.SetPod(&Pod{Namespace: "x", Name: "a", Node: "n2", IPs: []netip.Addr{netip.MustParseAddr("100.96.2.9")}})
	if rs := Compile(c, "n1"); len(rs.Isolated[rules.Ingress]) != 1 {
		t.Fatalf("after x/a moved: isolated %v", rs.Isolated)
	}
	c.DeletePod("x", "b")
	c.DeletePod("x", "b") // twice: harmless
	if rs := Compile(c, "n1"); len(rs.Isolated[rules.Ingress]) != 0 {
		t.Fatalf("after x/b went: isolated %v", rs.Isolated)
	}
	c.DeleteNetworkPolicy("x", "deny")
	if pods, nss, nps, cnps := c.Counts(); pods != 2 || nss != 2 || nps != 0 || cnps != 0 {
		t.Fatalf("counts %d %d %d %d", pods, nss, nps, cnps)
	}
}

// fixtureSpecWithEverything uses every kind of peer and port.
func fixtureSpecWithEverything() networkingv1.NetworkPolicySpec {
	port := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	end := int32(9000)
	return networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "a")},
			{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.8/29"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromString("http"))}, {Port: port(intstr.FromInt32(8080)), EndPort: &end}}}},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "y")}}}}}
}
