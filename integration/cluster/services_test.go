//go:build integration && e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/probe"
)

// TestClusterServices checks Kubernetes Services and the cluster DNS
// through kube-proxy on a cluster of real nodes with t1route installed as
// the README says, on every path a user's traffic takes: ClusterIP to an
// endpoint on the client's node and on the other node, a pod reaching
// its own Service, NodePort from outside the cluster to either node,
// hostPort (the portmap plugin the agent chains),
// externalTrafficPolicy: Local keeping the client's address, ClientIP
// session affinity, egress NetworkPolicy judged on the Service's endpoint
// (not its ClusterIP), and pods resolving Services by name through
// CoreDNS, also under a default-deny egress policy that allows only DNS.
// It ends with `cluster services: N passed, M failed`.
func TestClusterServices(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	layout := imageLayout(t, "v0.0.0-e2e-cluster", true)
	s := &steps{t: t}
	defer func() { fmt.Printf("cluster services: %d passed, %d failed\n", s.pass, s.fail) }()
	s.fail++ // until t1route and DNS run
	c := startCluster(t, Config{ImageLayout: layout}, "node-a-kubelet", "node-a-kube-proxy", "node-b-kube-proxy")
	installT1route(ctx, t, c)
	if err := waitAgents(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitDNS(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	s.fail--
	k := c.Client
	nodeA, nodeB := c.Nodes[0], c.Nodes[1]

	// Servers s1 (node-a) and s2 (node-b) are app=s; o (node-b) is app=o.
	// Clients a1, c1 and d1 are on node-a, b1 on node-b.
	pods := map[string]*corev1.Pod{}
	if !s.step("servers and clients Ready on both nodes", func(t *testing.T) {
		for _, p := range []struct{ name, node, app string }{{"s1", nodeA.Name, "s"}, {"s2", nodeB.Name, "s"}, {"o", nodeB.Name, "o"},
			{"a1", nodeA.Name, "a"}, {"c1", nodeA.Name, "c"}, {"d1", nodeA.Name, "d"}, {"b1", nodeB.Name, "b"}} {
			pod := echoPod(c, p.node, p.name)
			pod.Labels["app"] = p.app
			if _, err := k.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := waitFor(ctx, 2*time.Minute, "pods Ready", func() (bool, error) {
			list, err := k.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for i := range list.Items {
				if ready(&list.Items[i]) {
					pods[list.Items[i].Name] = &list.Items[i]
				}
			}
			return len(pods) == 7, nil
		}); err != nil {
			t.Fatal(err)
		}
	}) {
		return
	}
	s1, s2, o, a1, c1, d1, b1 := pods["s1"], pods["s2"], pods["o"], pods["a1"], pods["c1"], pods["d1"], pods["b1"]
	service := func(t *testing.T, name string, sel map[string]string, mutate func(*corev1.Service)) *corev1.Service {
		t.Helper()
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: sel,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if mutate != nil {
			mutate(svc)
		}
		svc, err := k.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// kube-proxy programs a Service once its EndpointSlice has ready endpoints.
		if err := waitFor(ctx, 30*time.Second, name+"'s endpoints", func() (bool, error) {
			ep, err := k.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{}) //nolint:staticcheck // the count is all we need
			return err == nil && len(ep.Subsets) > 0 && len(ep.Subsets[0].Addresses) > 0, nil
		}); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	// fetch gets url from pod from (host curl in its network namespace).
	fetch := func(from *corev1.Pod, url string) string {
		out, _ := c.PodExec(ctx, from, "curl", "-s", "-m", "3", url)
		return out
	}
	// answers waits until from reaches url, answered by one of hostnames
	// seeing remote ("" for any address).
	answers := func(t *testing.T, from *corev1.Pod, url, remote string, hostnames ...string) {
		t.Helper()
		var out string
		if err := waitFor(ctx, 20*time.Second, from.Name+" -> "+url, func() (bool, error) {
			out = fetch(from, url)
			for _, h := range hostnames {
				if echoedBy(out, h, remote) {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Errorf("%v: last answer %q (want %v answering, seeing %q)", err, out, hostnames, remote)
		}
	}
	// blocked checks that from cannot reach url, three tries of 3 s.
	blocked := func(t *testing.T, from *corev1.Pod, url string) {
		t.Helper()
		for i := 0; i < 3; i++ {
			if out := fetch(from, url); out != "" {
				t.Errorf("%s -> %s answered %q: want it blocked", from.Name, url, out)
				return
			}
		}
	}

	s.step("hostPort: a pod answers on its node's address, from the external host and from the other node", func(t *testing.T) {
		hp := echoPod(c, nodeA.Name, "hp")
		hp.Spec.Containers[0].Ports[0].HostPort = 18080
		if _, err := k.CoreV1().Pods("default").Create(ctx, hp, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, time.Minute, "hp Ready", func() (bool, error) {
			p, err := k.CoreV1().Pods("default").Get(ctx, "hp", metav1.GetOptions{})
			return err == nil && ready(p), nil
		}); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://%s:18080/", nodeA.IP)
		for _, from := range []struct {
			name, remote string
			args         []string
		}{{"the external host", ExternalIP, []string{"ip", "netns", "exec", c.ExternalNS}}, {nodeB.Name, "", nodeB.nsenter()}} {
			var out string
			if err := waitFor(ctx, 20*time.Second, from.name+" -> "+url, func() (bool, error) {
				args := append(append([]string(nil), from.args...), "curl", "-s", "-m", "3", url)
				o, _ := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
				out = string(o)
				return echoedBy(out, "hp", from.remote), nil
			}); err != nil {
				t.Errorf("%s -> hostPort %s: %v: last answer %q", from.name, url, err, out)
			}
		}
	})

	var svcA, svcB, svcS, svcO *corev1.Service
	s.step("pod -> ClusterIP Service -> endpoint on the same node, the source address kept", func(t *testing.T) {
		svcA = service(t, "svc-a", map[string]string{"pod": "s1"}, nil)
		answers(t, a1, "http://"+svcA.Spec.ClusterIP+"/", a1.Status.PodIP, "s1")
	})
	s.step("pod -> ClusterIP Service -> endpoint on the other node, the source address kept", func(t *testing.T) {
		svcB = service(t, "svc-b", map[string]string{"pod": "s2"}, nil)
		answers(t, a1, "http://"+svcB.Spec.ClusterIP+"/", a1.Status.PodIP, "s2")
	})
	s.step("hairpin: a pod reaching its own Service", func(t *testing.T) {
		if svcA == nil {
			t.Skip("no svc-a")
		}
		// kube-proxy masquerades hairpin traffic: any source address.
		answers(t, s1, "http://"+svcA.Spec.ClusterIP+"/", "", "s1")
	})
	s.step("NodePort from the external host: to the node of the endpoint and to the other node", func(t *testing.T) {
		np := service(t, "svc-np", map[string]string{"pod": "s1"}, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		port := np.Spec.Ports[0].NodePort
		for _, n := range []*Node{nodeA, nodeB} {
			url := fmt.Sprintf("http://%s:%d/", n.IP, port)
			var out string
			if err := waitFor(ctx, 20*time.Second, "external -> "+url, func() (bool, error) {
				o, _ := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "3", url).CombinedOutput()
				out = string(o)
				return echoedBy(out, "s1", ""), nil
			}); err != nil {
				t.Errorf("external host -> NodePort on %s: %v: last answer %q", n.Name, err, out)
			}
		}
	})
	s.step("externalTrafficPolicy: Local: the endpoint sees the external client's address", func(t *testing.T) {
		np := service(t, "svc-local", map[string]string{"pod": "s1"}, func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyLocal
		})
		url := fmt.Sprintf("http://%s:%d/", nodeA.IP, np.Spec.Ports[0].NodePort)
		var out string
		if err := waitFor(ctx, 20*time.Second, "external -> "+url, func() (bool, error) {
			o, _ := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "3", url).CombinedOutput()
			out = string(o)
			return echoedBy(out, "s1", ExternalIP), nil
		}); err != nil {
			t.Errorf("%v: last answer %q (want s1 seeing %s)", err, out, ExternalIP)
		}
	})
	s.step("session affinity ClientIP: every call from one client reaches the same endpoint", func(t *testing.T) {
		aff := service(t, "svc-affinity", map[string]string{"app": "s"}, func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP })
		url := "http://" + aff.Spec.ClusterIP + "/"
		answers(t, b1, url, b1.Status.PodIP, "s1", "s2")
		seen := map[string]int{}
		for i := 0; i < 10; i++ {
			out := fetch(b1, url)
			switch {
			case echoedBy(out, "s1", ""):
				seen["s1"]++
			case echoedBy(out, "s2", ""):
				seen["s2"]++
			default:
				seen["no answer"]++
			}
		}
		if len(seen) != 1 || seen["no answer"] > 0 {
			t.Errorf("10 calls of b1 to %s: %v (want all to one endpoint)", url, seen)
		}
	})
	s.step("egress NetworkPolicy through Services: allowed to app=s reaches s's Service, not o's", func(t *testing.T) {
		svcS = service(t, "svc-s", map[string]string{"app": "s"}, nil)
		svcO = service(t, "svc-o", map[string]string{"app": "o"}, nil)
		// Without a policy c1 reaches both (else blocked below proves nothing).
		answers(t, c1, "http://"+svcO.Spec.ClusterIP+"/", c1.Status.PodIP, "o")
		port := intstr.FromInt32(8080) // the endpoints' port: policy judges the endpoint, not the Service's port 80
		tcp := corev1.ProtocolTCP
		createPolicy(ctx, t, c, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "c1-egress-to-s"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "c"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "s"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}}}}})
		// The policy in force: o's pod IP blocked.
		if err := waitFor(ctx, 20*time.Second, "the policy in force", func() (bool, error) {
			return fetch(c1, "http://"+o.Status.PodIP+":8080/") == "", nil
		}); err != nil {
			t.Fatal(err)
		}
		answers(t, c1, "http://"+s2.Status.PodIP+":8080/", c1.Status.PodIP, "s2")
		for _, h := range []string{"s1", "s2"} {
			// Both endpoints, one on c1's node and one on the other: calls until each answered once.
			var out string
			if err := waitFor(ctx, 20*time.Second, "c1 -> svc-s answered by "+h, func() (bool, error) {
				out = fetch(c1, "http://"+svcS.Spec.ClusterIP+"/")
				return echoedBy(out, h, c1.Status.PodIP), nil
			}); err != nil {
				t.Errorf("c1 -> svc-s (%s), allowed to app=s: %v: last answer %q", svcS.Spec.ClusterIP, err, out)
			}
		}
		blocked(t, c1, "http://"+svcO.Spec.ClusterIP+"/")
	})
	s.step("DNS: a pod resolves a Service by name and calls it", func(t *testing.T) {
		if svcB == nil {
			t.Skip("no svc-b")
		}
		for _, from := range []*corev1.Pod{a1, b1} {
			var out string
			// Several calls: the kube-dns Service has a CoreDNS pod on each
			// node, and each call may reach either.
			for i := 0; i < 6; i++ {
				if err := waitFor(ctx, 20*time.Second, from.Name+" -> http://svc-b/", func() (bool, error) {
					out, _ = c.PodExecResolving(ctx, from, "echo", "curl", "-s", "-m", "3", "http://svc-b/")
					return echoedBy(out, "s2", from.Status.PodIP), nil
				}); err != nil {
					// Which half failed: the name, or the call.
					names, nerr := c.PodExecResolving(ctx, from, "echo", "getent", "ahostsv4", "svc-b")
					t.Errorf("%s -> http://svc-b/ (call %d): %v: last answer %q; resolving svc-b: %v %q; by ClusterIP: %q", from.Name, i+1, err, out,
						nerr, names, fetch(from, "http://"+svcB.Spec.ClusterIP+"/"))
					break
				}
			}
		}
	})
	s.step("DNS under a default-deny egress that allows only the DNS pods: names resolve, calls are blocked", func(t *testing.T) {
		if svcB == nil {
			t.Skip("no svc-b")
		}
		udp, tcp, dns := corev1.ProtocolUDP, corev1.ProtocolTCP, intstr.FromInt32(53)
		createPolicy(ctx, t, c, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "d1-dns-only"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					To: []networkingv1.NetworkPolicyPeer{{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": metav1.NamespaceSystem}},
						PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": DNSAppLabel}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}}}}})
		if err := waitFor(ctx, 20*time.Second, "the policy in force", func() (bool, error) {
			return fetch(d1, "http://"+s2.Status.PodIP+":8080/") == "", nil
		}); err != nil {
			t.Fatal(err)
		}
		name := "svc-b.default.svc." + ClusterDomain
		for i := 0; i < 6; i++ {
			out, err := c.PodExecResolving(ctx, d1, "echo", "getent", "ahostsv4", "svc-b")
			if err != nil || !strings.Contains(out, svcB.Spec.ClusterIP) || !strings.Contains(out, name) {
				t.Errorf("d1 resolving svc-b (try %d) under DNS-only egress: %v %q (want %s %s)", i+1, err, out, svcB.Spec.ClusterIP, name)
				break
			}
		}
		if out, _ := c.PodExecResolving(ctx, d1, "echo", "curl", "-s", "-m", "3", "http://svc-b/"); out != "" {
			t.Errorf("d1 -> http://svc-b/ answered %q: want it blocked (only DNS is allowed)", out)
		}
	})
}

// echoedBy reports whether out is t1route echo's answer from hostname, to
// a client with address remote ("" for any).
func echoedBy(out, hostname, remote string) bool {
	var r probe.Reply
	return json.Unmarshal([]byte(out), &r) == nil && r.Hostname == hostname && (remote == "" || r.RemoteIP == remote)
}

// createPolicy creates a NetworkPolicy in the default namespace.
func createPolicy(ctx context.Context, t *testing.T, c *Cluster, np *networkingv1.NetworkPolicy) {
	t.Helper()
	if _, err := c.Client.NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
