//go:build integration && e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/hostguard"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/pipeline"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// svcPod is a pod of the Service test: an API object, a namespace with
// its interface, and a who-server answering on 8080 (TCP and UDP, both
// families) with its name and the caller's address as it sees it.
type svcPod struct {
	name, ns, netns string
	labels          map[string]string
	node            *node
	ip, ip6         string
	log             string // the who-server's log
}

type svcWorld struct {
	*world
	exe  string
	dyn  dynamic.Interface
	pods map[string]*svcPod
	mgmt string // the management host's who-server address
}

// TestServices proves the bridge's Service translation with real packets:
// pods reach ClusterIP Services (no kube-proxy runs in this lab: the agent
// translates pods' connections itself, and the node's kernel only sees
// what the tests' own iptables rules, imitating kube-proxy, translate).
func TestServices(t *testing.T) {
	prerequisites(t)
	began := time.Now()
	w := &world{t: t, lab: newLab(t), dual: true}
	sw := &svcWorld{world: w, pods: map[string]*svcPod{}}
	defer func() {
		if t.Failed() && w.fail == 0 {
			w.fail++
		}
		fmt.Printf("services: %d passed, %d failed\n", w.pass, w.fail)
	}()
	var err error
	if sw.exe, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	w.bin = integration.BuildBinaries(t)
	w.cluster = integration.StartCluster(t)
	if sw.dyn, err = dynamic.NewForConfig(w.cluster.Config); err != nil {
		t.Fatal(err)
	}
	(&npWorld{world: w, dyn: sw.dyn}).installCRD()
	w.buildNetwork()
	w.simEnv = integration.StartNSXSim(t, w.bin, "--tier1", tier1, "--realize-netns", w.router)
	w.startController()
	w.startNodes()
	sw.attachPods()
	// The management host: a second address of the external host, in the
	// guarded network, with a who-server.
	w.lab.run("ip", "-n", w.ext, "addr", "add", "203.0.113.33/24", "dev", w.lab.name("x"))
	sw.mgmt = "203.0.113.33"
	w.lab.start(w.ext, "who-mgmt", []string{envWhoServe + "=mgmt@" + sw.mgmt}, sw.exe)
	integration.Eventually(t, 10*time.Second, "the management host's who-server", func() (bool, string) {
		return strings.Contains(w.lab.logFile("who-mgmt"), "serving"), w.lab.logFile("who-mgmt")
	})
	t.Logf("setup %s", time.Since(began).Round(time.Second))
	ctx := context.Background()
	a1, a2, b1, b2, csi := sw.pods["a1"], sw.pods["a2"], sw.pods["b1"], sw.pods["b2"], sw.pods["csi"]

	web := sw.service(t, "web-a2", nil, a2)  // endpoint on node-a
	webB := sw.service(t, "web-b1", nil, b1) // endpoint on node-b
	other := sw.service(t, "other", nil, b2) // app=other
	w.step("same node: a pod reaches a Service whose endpoint is on its node; the endpoint sees the pod's address", func(t *testing.T) {
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, a1, proto, web.Spec.ClusterIPs[0], "a2", a1.ip)
		}
	})
	w.step("introspection names the service tables: t1route get ovsflows -T EndpointDNAT shows the translation to a2", func(t *testing.T) {
		out, errOut, err := w.get(a1.node, "ovsflows", "-T", "EndpointDNAT")
		if err != nil || !strings.Contains(out, "nat(dst="+a2.ip+":8080)") {
			t.Fatalf("ovsflows -T EndpointDNAT (err %v):\n%s%s", err, out, errOut)
		}
		for _, name := range []string{"ServiceLB", "EndpointSelect", "SessionAffinity", "AffinityLearn", "UnSNAT", "HairpinSNAT"} {
			if _, errOut, err := w.get(a1.node, "ovsflows", "-T", name); err != nil {
				t.Fatalf("ovsflows -T %s: %v\n%s", name, err, errOut)
			}
		}
	})
	w.step("other node: the endpoint on the other node sees the pod's address", func(t *testing.T) {
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, a1, proto, webB.Spec.ClusterIPs[0], "b1", a1.ip)
		}
	})
	w.step("hairpin: a pod reaches its own Service and sees the hairpin address", func(t *testing.T) {
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, a2, proto, web.Spec.ClusterIPs[0], "a2", pipeline.HairpinSNAT4.String())
		}
	})
	w.step("IPv6: same node, other node and hairpin through the IPv6 cluster IP", func(t *testing.T) {
		v6 := func(s *corev1.Service) string {
			for _, ip := range s.Spec.ClusterIPs {
				if strings.Contains(ip, ":") {
					return ip
				}
			}
			t.Fatalf("%s has no IPv6 cluster IP: %v", s.Name, s.Spec.ClusterIPs)
			return ""
		}
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, a1, proto, v6(web), "a2", a1.ip6)
			sw.expectFrom(t, a1, proto, v6(webB), "b1", a1.ip6)
			sw.expectFrom(t, a2, proto, v6(web), "a2", pipeline.HairpinSNAT6.String())
		}
	})
	w.step("session affinity ClientIP: the same endpoint every time; without it, connections spread", func(t *testing.T) {
		sticky := sw.service(t, "sticky", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}, a2, b1)
		spread := sw.service(t, "spread", nil, a2, b1)
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, a1, proto, sticky.Spec.ClusterIPs[0], "", a1.ip)
			names := sw.endpointsSeen(t, a1, proto, sticky.Spec.ClusterIPs[0], 12)
			if len(names) != 1 {
				t.Fatalf("%s with affinity reached %v", proto, names)
			}
			sw.expectFrom(t, a1, proto, spread.Spec.ClusterIPs[0], "", a1.ip)
			if names := sw.endpointsSeen(t, a1, proto, spread.Spec.ClusterIPs[0], 24); len(names) != 2 {
				t.Fatalf("%s without affinity reached only %v in 24 connections", proto, names)
			}
		}
	})
	w.step("an endpoint removed: new connections go to the others, and a UDP client that keeps sending moves (its entry flushed)", func(t *testing.T) {
		moving := sw.service(t, "moving", nil, a2)
		vip := moving.Spec.ClusterIPs[0]
		sw.expectFrom(t, a1, "udp", vip, "a2", a1.ip)
		// One UDP flow, one source port, a datagram every 100 ms for 12 s.
		cmd, out := sw.startDial(a1, dialRequest{Proto: "udp", Addr: net.JoinHostPort(vip, "80"), Count: 120, Interval: 100 * time.Millisecond,
			Timeout: 300 * time.Millisecond, LocalPort: 40123})
		time.Sleep(time.Second)
		sw.setEndpoints(t, moving, b1) // a2 still runs: only the flush moves the flow
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		res := parseResults(t, out.String())
		first, last := res[0].Answer, res[len(res)-1].Answer
		if !strings.HasPrefix(first, "a2 ") || !strings.HasPrefix(last, "b1 ") {
			t.Fatalf("the UDP flow went from %q to %q, want from a2 to b1", first, last)
		}
		for _, proto := range []string{"tcp", "udp"} {
			if names := sw.endpointsSeen(t, a1, proto, vip, 6); len(names) != 1 || !names["b1"] {
				t.Fatalf("%s: new connections reached %v, want only b1", proto, names)
			}
		}
	})
	w.step("a Service without endpoints has no flows: its connections go to the node's kernel, where an imitation of kube-proxy's rule answers", func(t *testing.T) {
		none := sw.service(t, "none", nil)
		vip := none.Spec.ClusterIPs[0]
		for _, n := range w.nodes {
			flows, err := ovs.OFCtl{RunDir: n.ovs.dir, Bridge: "br-int"}.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range flows {
				if strings.Contains(f, "nw_dst="+vip+",") {
					t.Fatalf("%s has a flow for %s: %s", n.name, vip, f)
				}
			}
		}
		if r := sw.dial(t, a1, dialRequest{Proto: "tcp", Addr: net.JoinHostPort(vip, "80"), Count: 1, Timeout: time.Second}); r[0].OK {
			t.Fatalf("a Service without endpoints answered: %+v", r[0])
		}
		// kube-proxy, imitated on node-a: its rule sends the connection to b1.
		sw.iptables(t, a1.node, false, "-t", "nat", "-A", "PREROUTING", "-d", vip, "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", b1.ip+":8080")
		sw.expectFrom(t, a1, "tcp", vip, "b1", a1.ip)
	})
	w.step("the kernel translates a connection to a local endpoint (a NodePort, imitated): its replies return through the kernel", func(t *testing.T) {
		n := a1.node
		for _, proto := range []string{"tcp", "udp"} {
			sw.iptables(t, n, false, "-t", "nat", "-A", "PREROUTING", "-d", n.ip, "-p", proto, "--dport", "30080", "-j", "DNAT", "--to-destination", a2.ip+":8080")
			sw.iptables(t, n, true, "-t", "nat", "-A", "PREROUTING", "-d", n.ip6, "-p", proto, "--dport", "30080", "-j", "DNAT", "--to-destination", "["+a2.ip6+"]:8080")
			sw.expectFrom(t, a1, proto, n.ip, "a2", a1.ip, 30080)
			sw.expectFrom(t, a1, proto, n.ip6, "a2", a1.ip6, 30080)
			sw.expectFrom(t, b1, proto, n.ip, "a2", b1.ip, 30080) // from the other node: as before
		}
	})
	w.step("egress policy judges the endpoint: allowed to app=web through their Services, blocked through another pod's", func(t *testing.T) {
		sw.policy(t, np("svc", "client-egress", sel("role", "client"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(networkingv1.PolicyTypeEgress),
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}},
				Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, intstr.FromInt32(8080)), port(corev1.ProtocolUDP, intstr.FromInt32(8080))}}}}))
		defer sw.clearPolicies(t)
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectBlocked(t, a1, proto, other.Spec.ClusterIPs[0], 80)
			sw.expectFrom(t, a1, proto, web.Spec.ClusterIPs[0], "a2", a1.ip)
			sw.expectFrom(t, a1, proto, webB.Spec.ClusterIPs[0], "b1", a1.ip)
		}
	})
	w.step("ingress isolation of the endpoint judges the real client through the Service", func(t *testing.T) {
		sw.policy(t, np("svc", "web-ingress", sel("app", "web"), networkingv1.NetworkPolicySpec{
			Ingress: from(networkingv1.NetworkPolicyPeer{PodSelector: sel("role", "client")})}))
		defer sw.clearPolicies(t)
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectBlocked(t, b2, proto, webB.Spec.ClusterIPs[0], 80) // other node
			sw.expectBlocked(t, b2, proto, web.Spec.ClusterIPs[0], 80)  // crosses nodes to a2
			sw.expectFrom(t, a1, proto, webB.Spec.ClusterIPs[0], "b1", a1.ip)
			sw.expectFrom(t, a1, proto, web.Spec.ClusterIPs[0], "a2", a1.ip)
		}
	})
	w.step("the management guard holds through a Service (selectorless, its EndpointSlice at the management host); the CSI pod passes", func(t *testing.T) {
		sw.applyGuard(t)
		mg := sw.service(t, "mgmt", func(s *corev1.Service) { s.Spec.Selector = nil })
		sw.setSlice(t, mg, []string{sw.mgmt}, nil)
		sw.expectFrom(t, csi, "tcp", mg.Spec.ClusterIPs[0], "mgmt", csi.ip)
		sw.expectFrom(t, csi, "udp", mg.Spec.ClusterIPs[0], "mgmt", csi.ip)
		for _, p := range []*svcPod{a1, b2} {
			for _, proto := range []string{"tcp", "udp"} {
				sw.expectBlocked(t, p, proto, mg.Spec.ClusterIPs[0], 80)
			}
		}
	})
	w.step("the management guard holds after the kernel translates (a NodePort to the management host, imitated), from this node's pods and others'", func(t *testing.T) {
		// kube-proxy's NodePort (externalTrafficPolicy Cluster) also
		// masquerades, after FORWARD, where the guard judges the real source.
		n := a1.node
		for _, proto := range []string{"tcp", "udp"} {
			sw.iptables(t, n, false, "-t", "nat", "-A", "PREROUTING", "-d", n.ip, "-p", proto, "--dport", "30033", "-j", "DNAT", "--to-destination", sw.mgmt+":8080")
		}
		sw.iptables(t, n, false, "-t", "nat", "-A", "POSTROUTING", "-d", sw.mgmt, "-j", "MASQUERADE")
		integration.Eventually(t, 20*time.Second, "the guard chain in node-a's kernel", func() (bool, string) {
			out, _ := inNetns(n.ns, "iptables", "-S", hostguard.Chain)
			return strings.Contains(out, "-d 203.0.113.32/28 -j DROP"), out
		})
		for _, proto := range []string{"tcp", "udp"} {
			sw.expectFrom(t, csi, proto, n.ip, "mgmt", n.ip, 30033) // exempt, from the other node (masqueraded by then)
			sw.expectBlocked(t, a1, proto, n.ip, 30033)             // this node's pod
			sw.expectBlocked(t, b2, proto, n.ip, 30033)             // another node's pod
		}
		out, _ := inNetns(n.ns, "iptables", "-S", "FORWARD")
		if first := strings.Split(strings.TrimSpace(out), "\n"); len(first) < 2 || first[1] != "-A FORWARD -j "+hostguard.Chain {
			t.Fatalf("FORWARD does not jump to the guard first:\n%s", out)
		}
	})
	w.step("a denied connection never passes, while policies come and go; no reply passes for one", func(t *testing.T) {
		sw.deniedNeverPasses(t, a1, b1, webB)
	})
	w.step("teardown leaves no namespace, link or process", func(t *testing.T) {
		w.lab.teardown()
		if left := w.lab.leftovers(); len(left) > 0 {
			t.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	t.Logf("services e2e: total %s", time.Since(began).Round(time.Second))
	if t.Failed() {
		for _, n := range w.nodes {
			t.Logf("agent %s:\n%s", n.name, lastLines(w.lab.logFile("agent-"+n.name), 40))
		}
	}
}

// attachPods makes namespace svc with a1, a2 on node-a and b1, b2 on
// node-b, and kube-system/csi (the vSphere CSI node driver's label) on
// node-b: Pod objects, CNI ADD, their IPs in their status, a who-server.
func (sw *svcWorld) attachPods() {
	w, ctx := sw.world, context.Background()
	if _, err := w.cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "svc"}}, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	for i, s := range []struct {
		name, ns string
		node     int
		labels   map[string]string
	}{
		{"a1", "svc", 0, map[string]string{"role": "client"}},
		{"a2", "svc", 0, map[string]string{"app": "web"}},
		{"b1", "svc", 1, map[string]string{"app": "web"}},
		{"b2", "svc", 1, map[string]string{"app": "other"}},
		{"csi", "kube-system", 1, map[string]string{"app": "vsphere-csi-node"}},
	} {
		n := w.nodes[s.node]
		pod, err := w.cluster.Client.CoreV1().Pods(s.ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name, Labels: s.labels},
			Spec: corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "who", Image: "none"}}}}, metav1.CreateOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		p := &svcPod{name: s.name, ns: s.ns, labels: s.labels, node: n, netns: w.lab.netns(fmt.Sprintf("-sv%d", i)), log: "who-" + s.name}
		res, err := n.cni.addPod(ctx, fmt.Sprintf("sv%d%s", i, w.lab.prefix), p.netns, s.ns, s.name)
		if err != nil {
			w.t.Fatalf("CNI ADD %s: %v\nagent log:\n%s", s.name, err, lastLines(w.lab.logFile("agent-"+n.name), 20))
		}
		r, err := current.NewResultFromResult(res)
		if err != nil || len(r.IPs) != 2 {
			w.t.Fatalf("ADD result of %s: %v %v", s.name, res, err)
		}
		for _, c := range r.IPs {
			if c.Address.IP.To4() != nil {
				p.ip = c.Address.IP.String()
			} else {
				p.ip6 = c.Address.IP.String()
			}
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}, {IP: p.ip6}}}
		if _, err := w.cluster.Client.CoreV1().Pods(s.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			w.t.Fatal(err)
		}
		w.lab.start(p.netns, p.log, []string{envWhoServe + "=" + s.name}, sw.exe)
		integration.Eventually(w.t, 10*time.Second, s.name+"'s who-server", func() (bool, string) {
			return strings.Contains(w.lab.logFile(p.log), "serving"), w.lab.logFile(p.log)
		})
		sw.pods[s.name] = p
	}
}

// service creates a dual-stack Service (port 80 -> 8080, TCP and UDP) in
// namespace svc and, as the EndpointSlice controller would, its slices for
// eps (none: no slice).
func (sw *svcWorld) service(t *testing.T, name string, mut func(*corev1.Service), eps ...*svcPod) *corev1.Service {
	t.Helper()
	policy := corev1.IPFamilyPolicyRequireDualStack
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "svc", Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"svc": name}, IPFamilyPolicy: &policy,
			Ports: []corev1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
				{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if mut != nil {
		mut(s)
	}
	s, err := sw.cluster.Client.CoreV1().Services("svc").Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	if len(eps) > 0 {
		sw.setEndpoints(t, s, eps...)
	}
	return s
}

// setEndpoints makes the Service's slices (one per family) list eps.
func (sw *svcWorld) setEndpoints(t *testing.T, s *corev1.Service, eps ...*svcPod) {
	t.Helper()
	var v4, v6 []string
	var nodes []string
	for _, p := range eps {
		v4, v6, nodes = append(v4, p.ip), append(v6, p.ip6), append(nodes, p.node.name)
	}
	sw.setSlice(t, s, v4, nodes)
	sw.setSlice(t, s, v6, nodes)
}

// setSlice creates or replaces the Service's slice of the addresses' family.
func (sw *svcWorld) setSlice(t *testing.T, s *corev1.Service, addrs, nodes []string) {
	t.Helper()
	if len(addrs) == 0 {
		return
	}
	fam, suffix := discoveryv1.AddressTypeIPv4, "v4"
	if strings.Contains(addrs[0], ":") {
		fam, suffix = discoveryv1.AddressTypeIPv6, "v6"
	}
	tcp, udp, p := corev1.ProtocolTCP, corev1.ProtocolUDP, int32(8080)
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-" + suffix,
		Labels: map[string]string{discoveryv1.LabelServiceName: s.Name, discoveryv1.LabelManagedBy: "e2e"}},
		AddressType: fam, Ports: []discoveryv1.EndpointPort{{Name: ptrTo("tcp"), Protocol: &tcp, Port: &p}, {Name: ptrTo("udp"), Protocol: &udp, Port: &p}}}
	for i, a := range addrs {
		e := discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}}
		if i < len(nodes) {
			e.NodeName = ptrTo(nodes[i])
		}
		sl.Endpoints = append(sl.Endpoints, e)
	}
	api := sw.cluster.Client.DiscoveryV1().EndpointSlices(s.Namespace)
	if old, err := api.Get(context.Background(), sl.Name, metav1.GetOptions{}); err == nil {
		sl.ResourceVersion = old.ResourceVersion
		_, err = api.Update(context.Background(), sl, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := api.Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ptrTo[T any](v T) *T { return &v }

func (sw *svcWorld) startDial(from *svcPod, req dialRequest) (*exec.Cmd, *strings.Builder) {
	spec, _ := json.Marshal(req)
	cmd := exec.Command("ip", "netns", "exec", from.netns, sw.exe)
	cmd.Env = append(os.Environ(), envWhoDial+"="+string(spec))
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		sw.t.Fatal(err)
	}
	return cmd, out
}

func (sw *svcWorld) dial(t *testing.T, from *svcPod, req dialRequest) []dialResult {
	t.Helper()
	cmd, out := sw.startDial(from, req)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dial from %s: %v", from.name, err)
	}
	return parseResults(t, out.String())
}

func parseResults(t *testing.T, out string) []dialResult {
	t.Helper()
	var res []dialResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r dialResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("dial output %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) == 0 {
		t.Fatalf("no dial results in %q", out)
	}
	return res
}

// expectFrom waits (the agents apply changes within a second or so) until
// a connection from a pod to addr:port (80 unless given) is answered by
// the pod named want ("" any) and that pod saw the source seenSrc.
func (sw *svcWorld) expectFrom(t *testing.T, from *svcPod, proto, addr, want, seenSrc string, port ...int) {
	t.Helper()
	p := 80
	if len(port) > 0 {
		p = port[0]
	}
	target := net.JoinHostPort(addr, strconv.Itoa(p))
	var last dialResult
	integration.Eventually(t, 15*time.Second, fmt.Sprintf("%s %s -> %s answered by %q", from.name, proto, target, want), func() (bool, string) {
		last = sw.dial(t, from, dialRequest{Proto: proto, Addr: target, Count: 1, Timeout: time.Second})[0]
		return last.OK, fmt.Sprintf("%+v", last)
	})
	name, seen, _ := strings.Cut(last.Answer, " ")
	host, _, err := net.SplitHostPort(seen)
	if (want != "" && name != want) || err != nil || host != seenSrc {
		t.Fatalf("%s %s -> %s: answered %q, want %s seeing %s", from.name, proto, target, last.Answer, want, seenSrc)
	}
}

// expectBlocked waits until connections from a pod to addr:port fail, then
// checks that the next three do too.
func (sw *svcWorld) expectBlocked(t *testing.T, from *svcPod, proto, addr string, port int) {
	t.Helper()
	target := net.JoinHostPort(addr, strconv.Itoa(port))
	integration.Eventually(t, 15*time.Second, fmt.Sprintf("%s %s -> %s blocked", from.name, proto, target), func() (bool, string) {
		r := sw.dial(t, from, dialRequest{Proto: proto, Addr: target, Count: 1, Timeout: 700 * time.Millisecond})[0]
		return !r.OK, fmt.Sprintf("%+v", r)
	})
	for _, r := range sw.dial(t, from, dialRequest{Proto: proto, Addr: target, Count: 3, Timeout: 700 * time.Millisecond}) {
		if r.OK {
			t.Fatalf("%s %s -> %s: answered %q after it was blocked", from.name, proto, target, r.Answer)
		}
	}
}

// endpointsSeen makes n connections and returns who answered.
func (sw *svcWorld) endpointsSeen(t *testing.T, from *svcPod, proto, addr string, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range sw.dial(t, from, dialRequest{Proto: proto, Addr: net.JoinHostPort(addr, "80"), Count: n, Timeout: time.Second}) {
		if !r.OK {
			t.Fatalf("%s %s -> %s failed: %s", from.name, proto, addr, r.Err)
		}
		name, _, _ := strings.Cut(r.Answer, " ")
		seen[name] = true
	}
	return seen
}

// iptables adds a rule in a node's namespace, removed at the end of the test.
func (sw *svcWorld) iptables(t *testing.T, n *node, v6 bool, args ...string) {
	t.Helper()
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	if out, err := inNetns(n.ns, append([]string{bin}, args...)...); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	del := append([]string{}, args...)
	for i, a := range del {
		if a == "-A" || a == "-I" {
			del[i] = "-D"
		}
	}
	t.Cleanup(func() { inNetns(n.ns, append([]string{bin}, del...)...) }) //nolint:errcheck
}

func (sw *svcWorld) policy(t *testing.T, p *networkingv1.NetworkPolicy) {
	t.Helper()
	if _, err := sw.cluster.Client.NetworkingV1().NetworkPolicies(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (sw *svcWorld) clearPolicies(t *testing.T) {
	if err := sw.cluster.Client.NetworkingV1().NetworkPolicies("svc").DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}

// applyGuard applies the management guard as the controller keeps it
// (203.0.113.32/28; the vSphere pods exempt).
func (sw *svcWorld) applyGuard(t *testing.T) {
	t.Helper()
	policies, err := guard.ManagementGuard([]netip.Prefix{netip.MustParsePrefix("203.0.113.32/28")}, config.DefaultGuardSelectors())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		u, err := cnp.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sw.dyn.Resource(cnp.Resource).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", p.Name, err)
		}
	}
}

// deniedNeverPasses: while an egress deny of client -> server comes and
// goes three times, a prober makes a new connection to the server's
// Service every 100 ms; in every period in which the deny is in force (from
// the first blocked probe until the deny is deleted) the server accepts
// nothing from the client. Then, while denied, a UDP datagram to the
// Service puts a translated but never allowed connection in conntrack, and
// a datagram from the endpoint shaped as its reply is not let through (a
// control without the denied datagram is).
func (sw *svcWorld) deniedNeverPasses(t *testing.T, client, server *svcPod, s *corev1.Service) {
	vip := s.Spec.ClusterIPs[0]
	target := net.JoinHostPort(vip, "80")
	seen := func() int { return strings.Count(sw.lab.logFile(server.log), " "+client.ip+":") }
	deny := func() *networkingv1.NetworkPolicy {
		return np("svc", "deny-client", sel("role", "client"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(networkingv1.PolicyTypeEgress)})
	}
	for round := range 3 {
		sw.policy(t, deny())
		sw.expectBlocked(t, client, "tcp", vip, 80)
		before := seen()
		res := sw.dial(t, client, dialRequest{Proto: "tcp", Addr: target, Count: 20, Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
		res = append(res, sw.dial(t, client, dialRequest{Proto: "udp", Addr: target, Count: 10, Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond})...)
		sw.clearPolicies(t)
		if after := seen(); after != before {
			t.Fatalf("round %d: %s accepted %d connections or datagrams from %s while denied", round, server.name, after-before, client.name)
		}
		for _, r := range res {
			if r.OK {
				t.Fatalf("round %d: a denied probe was answered: %+v", round, r)
			}
		}
		sw.expectFrom(t, client, "tcp", vip, server.name, client.ip)
	}
	// The reply of a denied, translated connection. The Service's port 80
	// goes to 8080 on the server; the reply is faked from there.
	inject := func() dialResult {
		cmd, out := sw.startDial(client, dialRequest{Proto: "udp", Addr: target, Count: 1, Timeout: 3 * time.Second, LocalPort: 40999})
		time.Sleep(time.Second)
		// From the server's pod: a datagram from its port 8080 cannot be
		// sent while its who-server holds the port, so the Service's
		// target for this check is a port nothing listens on.
		sw.dial(t, server, dialRequest{Proto: "udp", Addr: net.JoinHostPort(client.ip, "40999"), Count: 1, Timeout: 300 * time.Millisecond, LocalPort: 9999})
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		return parseResults(t, out.String())[0]
	}
	noListener := sw.service(t, "no-listener", func(x *corev1.Service) { x.Spec.Selector = nil })
	tcp, udp, p := corev1.ProtocolTCP, corev1.ProtocolUDP, int32(9999)
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "svc", Name: "no-listener-v4",
		Labels: map[string]string{discoveryv1.LabelServiceName: "no-listener"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Name: ptrTo("tcp"), Protocol: &tcp, Port: &p}, {Name: ptrTo("udp"), Protocol: &udp, Port: &p}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{server.ip}, NodeName: ptrTo(server.node.name)}}}
	if _, err := sw.cluster.Client.DiscoveryV1().EndpointSlices("svc").Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	target = net.JoinHostPort(noListener.Spec.ClusterIPs[0], "80")
	time.Sleep(2 * time.Second) // the agents install the Service
	sw.policy(t, deny())
	defer sw.clearPolicies(t)
	sw.expectBlocked(t, client, "tcp", vip, 80)
	if r := inject(); r.OK {
		t.Fatalf("the reply of a denied connection reached the client: %+v", r)
	}
	// Control: with no denied datagram first, the same datagram from the
	// server arrives (as a new connection from the server, which nothing
	// denies), so the check above could see one.
	cmd, out := sw.startDial(client, dialRequest{Proto: "udp", Addr: "203.0.113.10:9", Count: 1, Timeout: 3 * time.Second, LocalPort: 40998})
	time.Sleep(time.Second)
	sw.dial(t, server, dialRequest{Proto: "udp", Addr: net.JoinHostPort(client.ip, "40998"), Count: 1, Timeout: 300 * time.Millisecond, LocalPort: 9999})
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if r := parseResults(t, out.String())[0]; !r.OK || !strings.HasPrefix(r.From, server.ip+":") {
		t.Fatalf("control: the server's datagram did not arrive: %+v", r)
	}
}
