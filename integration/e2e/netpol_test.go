//go:build integration && e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/node/policy/cnp"

	"github.com/t1route/t1route/podroute/guard"

	"github.com/t1route/t1route/podroute/config"
)

// npEndpoint is one end of a probe: a pod, the external host, the
// management host, or a node talking to its own pods.
type npEndpoint struct {
	name    string // "x/a", "ext", "mgmt", "node-a"
	netns   string
	ip      string
	svcIP   string // pods: the ClusterIP of a Service whose one endpoint is the pod
	bind    string // source address for probes from here ("": the kernel's)
	ns, pod string // pods only
	node    *node  // pods and nodes
	isNode  bool
}

func (e *npEndpoint) isPod() bool             { return e.pod != "" }
func (e *npEndpoint) in(ns ...string) bool    { return e.isPod() && slices.Contains(ns, e.ns) }
func (e *npEndpoint) is(names ...string) bool { return slices.Contains(names, e.name) }

type npPort struct {
	proto string
	port  int
}

func (p npPort) String() string { return fmt.Sprintf("%s/%d", p.proto, p.port) }

// Every pod serves TCP and UDP on ports 80 and 81 (named serve-80-tcp,
// ...); SCTP is not probed: this machine's kernel has no SCTP sockets.
var npPorts = []npPort{{"tcp", 80}, {"tcp", 81}, {"udp", 80}, {"udp", 81}}

// expectFn is a case's reachability matrix: for every source, destination
// and port, whether the connection must succeed. Nodes reaching their own
// pods are always expected to succeed and are not asked.
type expectFn func(src, dst *npEndpoint, p npPort) bool

type npCase struct {
	name   string
	nps    []*networkingv1.NetworkPolicy
	cnps   []*cnp.ClusterNetworkPolicy
	expect expectFn
}

type npWorld struct {
	*world
	exe       string
	dyn       dynamic.Interface
	pods      []*npEndpoint
	ext, mgmt *npEndpoint
	nodeEPs   []*npEndpoint
}

func TestNetworkPolicy(t *testing.T) {
	prerequisites(t)
	began := time.Now()
	w := &world{t: t, lab: newLab(t), agentExtra: []string{"--log-denied", "--policy-stats-interval", "1s"}}
	nw := &npWorld{world: w}
	defer func() {
		if t.Failed() && w.fail == 0 {
			w.fail++
		}
		fmt.Printf("networkpolicy: %d passed, %d failed\n", w.pass, w.fail)
	}()
	var err error
	if nw.exe, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	w.bin = integration.BuildBinaries(t)
	w.cluster = integration.StartCluster(t)
	if nw.dyn, err = dynamic.NewForConfig(w.cluster.Config); err != nil {
		t.Fatal(err)
	}
	nw.installCRD()
	w.buildNetwork()
	w.simEnv = integration.StartNSXSim(t, w.bin, "--tier1", tier1, "--realize-netns", w.router)
	w.startController()
	w.startNodes()
	nw.addHosts()
	nw.attachPods()
	setup := time.Since(began)

	for _, c := range npCases() {
		w.step(c.name, func(t *testing.T) { nw.runCase(t, c) })
	}
	w.step("a policy added and removed under a running connection", nw.runningConnection)
	w.step("denied packets are counted per policy and direction, and logged naming the policy", nw.deniedMetrics)
	w.step("teardown leaves no namespace, link or process", func(t *testing.T) {
		w.lab.teardown()
		if left := w.lab.leftovers(); len(left) > 0 {
			t.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	t.Logf("network policy e2e: setup %s, total %s", setup.Round(time.Second), time.Since(began).Round(time.Second))
	if t.Failed() {
		for _, n := range w.nodes {
			t.Logf("agent %s:\n%s", n.name, lastLines(w.lab.logFile("agent-"+n.name), 30))
		}
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD installs the ClusterNetworkPolicy CRD, as render's manifests
// do, and waits until the API serves it.
func (nw *npWorld) installCRD() {
	var obj map[string]any
	if err := yaml.Unmarshal(cnp.CRD(), &obj); err != nil {
		nw.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := nw.dyn.Resource(crdGVR).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		nw.t.Fatal(err)
	}
	integration.Eventually(nw.t, 30*time.Second, "the ClusterNetworkPolicy CRD served", func() (bool, string) {
		_, err := nw.dyn.Resource(cnp.Resource).List(ctx, metav1.ListOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

// addHosts gives the external host a second address, the management host
// (inside the guarded 203.0.113.32/28), and runs echo servers on both.
func (nw *npWorld) addHosts() {
	w := nw.world
	w.lab.run("ip", "-n", w.ext, "addr", "add", "203.0.113.33/24", "dev", w.lab.name("x"))
	nw.ext = &npEndpoint{name: "ext", netns: w.ext, ip: "203.0.113.10", bind: "203.0.113.10"}
	nw.mgmt = &npEndpoint{name: "mgmt", netns: w.ext, ip: "203.0.113.33", bind: "203.0.113.33"}
	for _, h := range []*npEndpoint{nw.ext, nw.mgmt} {
		nw.serve(h.netns, "np-"+h.name, h.ip)
	}
	for _, n := range w.nodes {
		nw.nodeEPs = append(nw.nodeEPs, &npEndpoint{name: n.name, netns: n.ns, node: n, isNode: true})
	}
}

func (nw *npWorld) serve(netns, logName, ip string) {
	var spec []string
	for _, p := range npPorts {
		spec = append(spec, fmt.Sprintf("%s:%s:%d", p.proto, ip, p.port))
	}
	nw.lab.start(netns, logName, []string{envServe + "=" + strings.Join(spec, ",")}, nw.exe)
	integration.Eventually(nw.t, 10*time.Second, logName+" serving", func() (bool, string) {
		log := nw.lab.logFile(logName)
		return strings.Contains(log, "serving"), log
	})
}

// attachPods makes namespaces x, y and z with pods a, b and c each, and
// kube-system/csi (labelled as the vSphere CSI node driver), alternately
// on the two nodes: Pod objects first (so the agents know them before
// they start), then CNI ADD, then the pod's IP in its status, as kubelet
// reports it.
func (nw *npWorld) attachPods() {
	w, ctx := nw.world, context.Background()
	for _, ns := range []string{"x", "y", "z"} {
		if _, err := w.cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"ns": ns}}}, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
	type spec struct{ ns, name string }
	var specs []spec
	for _, ns := range []string{"x", "y", "z"} {
		for _, name := range []string{"a", "b", "c"} {
			specs = append(specs, spec{ns, name})
		}
	}
	specs = append(specs, spec{"kube-system", "csi"})
	var ports []corev1.ContainerPort
	for _, p := range npPorts {
		ports = append(ports, corev1.ContainerPort{Name: fmt.Sprintf("serve-%d-%s", p.port, p.proto), ContainerPort: int32(p.port),
			Protocol: corev1.Protocol(strings.ToUpper(p.proto))})
	}
	for i, s := range specs {
		n := w.nodes[i%len(w.nodes)]
		labels := map[string]string{"pod": s.name}
		if s.name == "csi" {
			labels = map[string]string{"app": "vsphere-csi-node"}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name, Labels: labels},
			Spec: corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "server", Image: "none", Ports: ports}}}}
		pod, err := w.cluster.Client.CoreV1().Pods(s.ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		e := &npEndpoint{name: s.ns + "/" + s.name, ns: s.ns, pod: s.name, node: n}
		e.netns = w.lab.netns(fmt.Sprintf("-np%d", i))
		res, err := n.cni.addPod(ctx, fmt.Sprintf("np%d%s", i, w.lab.prefix), e.netns, s.ns, s.name)
		if err != nil {
			w.t.Fatalf("CNI ADD %s: %v\nagent log:\n%s", e.name, err, lastLines(w.lab.logFile("agent-"+n.name), 20))
		}
		r, err := current.NewResultFromResult(res)
		if err != nil || len(r.IPs) == 0 {
			w.t.Fatalf("ADD result of %s: %v %v", e.name, res, err)
		}
		e.ip = r.IPs[0].Address.IP.String()
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: e.ip, PodIPs: []corev1.PodIP{{IP: e.ip}}}
		if _, err := w.cluster.Client.CoreV1().Pods(s.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			w.t.Fatal(err)
		}
		nw.serve(e.netns, "np-"+s.ns+"-"+s.name, "0.0.0.0")
		e.svcIP = nw.serviceFor(e)
		nw.pods = append(nw.pods, e)
	}
}

// serviceFor makes a Service (ports 80 and 81, TCP and UDP, to the same
// ports) whose EndpointSlice, as the EndpointSlice controller would write
// it, lists the pod, and returns its ClusterIP: the matrix also probes
// through it, as the upstream NetworkPolicy suite probes through Services.
func (nw *npWorld) serviceFor(e *npEndpoint) string {
	ctx := context.Background()
	var ports []corev1.ServicePort
	var slicePorts []discoveryv1.EndpointPort
	for _, p := range npPorts {
		name, proto, num := fmt.Sprintf("%s-%d", p.proto, p.port), corev1.Protocol(strings.ToUpper(p.proto)), int32(p.port)
		ports = append(ports, corev1.ServicePort{Name: name, Protocol: proto, Port: num, TargetPort: intstr.FromInt32(num)})
		slicePorts = append(slicePorts, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &num})
	}
	svc, err := nw.cluster.Client.CoreV1().Services(e.ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "s-" + e.pod},
		Spec: corev1.ServiceSpec{Ports: ports}}, metav1.CreateOptions{})
	if err != nil {
		nw.t.Fatal(err)
	}
	ready, node := true, e.node.name
	if _, err := nw.cluster.Client.DiscoveryV1().EndpointSlices(e.ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: e.ns, Name: "s-" + e.pod, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: slicePorts,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{e.ip}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}, metav1.CreateOptions{}); err != nil {
		nw.t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}

// addPod is CNI ADD for a pod of a namespace (the runtime passes both).
func (r *cniRuntime) addPod(ctx context.Context, containerID, podNetns, namespace, name string) (types.Result, error) {
	list, err := r.conf()
	if err != nil {
		return nil, err
	}
	rt := rtConf(containerID, podNetns, name)
	for i, a := range rt.Args {
		if a[0] == "K8S_POD_NAMESPACE" {
			rt.Args[i][1] = namespace
		}
	}
	return r.cni.AddNetworkList(ctx, list, rt)
}

type probeKey struct {
	src, dst string
	port     npPort
}

// observe probes every pair once, every source at the same time, and
// returns what got through.
func (nw *npWorld) observe(t *testing.T) map[probeKey]bool {
	sources := append(append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt), nw.nodeEPs...)
	dsts := append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt)
	var mu sync.Mutex
	got := map[probeKey]bool{}
	var wg sync.WaitGroup
	for _, src := range sources {
		req := probeRequest{Bind: src.bind, Timeout: time.Second}
		var keys []probeKey
		for _, dst := range dsts {
			if !probed(src, dst) {
				continue
			}
			for _, p := range npPorts {
				req.Targets = append(req.Targets, probeTarget{Addr: dst.ip, Proto: p.proto, Port: p.port})
				keys = append(keys, probeKey{src.name, dst.name, p})
				if viaService(src, dst) {
					req.Targets = append(req.Targets, probeTarget{Addr: dst.svcIP, Proto: p.proto, Port: p.port})
					keys = append(keys, probeKey{src.name, svcName(dst), p})
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec, _ := json.Marshal(req)
			cmd := exec.Command("ip", "netns", "exec", src.netns, nw.exe)
			cmd.Env = append(os.Environ(), envProbe+"="+string(spec))
			out, err := cmd.Output()
			var res []bool
			if err == nil {
				err = json.Unmarshal(out, &res)
			}
			if err != nil || len(res) != len(keys) {
				t.Errorf("probes from %s: %v (%d results for %d probes)", src.name, err, len(res), len(keys))
				return
			}
			mu.Lock()
			for i, k := range keys {
				got[k] = res[i]
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// viaService: pods are also probed from pods through their Service (the
// agent translates pods' connections; in this lab no kube-proxy serves
// the hosts or the nodes).
func viaService(src, dst *npEndpoint) bool {
	return src.isPod() && dst.svcIP != "" && src.name != dst.name
}

func svcName(dst *npEndpoint) string { return "svc:" + dst.name }

// probed: pods are probed from everywhere and reach everywhere; the
// hosts are not probed from each other; a node only probes its own pods.
func probed(src, dst *npEndpoint) bool {
	switch {
	case src.name == dst.name:
		return false
	case src.isNode:
		return dst.isPod() && dst.node == src.node
	}
	return src.isPod() || dst.isPod()
}

func (nw *npWorld) expected(expect expectFn) map[probeKey]bool {
	sources := append(append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt), nw.nodeEPs...)
	dsts := append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt)
	want := map[probeKey]bool{}
	for _, src := range sources {
		for _, dst := range dsts {
			if !probed(src, dst) {
				continue
			}
			for _, p := range npPorts {
				want[probeKey{src.name, dst.name, p}] = src.isNode || expect(src, dst, p)
				if viaService(src, dst) { // policy judges the endpoint: the same verdict
					want[probeKey{src.name, svcName(dst), p}] = expect(src, dst, p)
				}
			}
		}
	}
	return want
}

// table prints the matrix: a row per source, a column per destination,
// one mark per port (tcp/80 tcp/81 udp/80 udp/81): '+' reached as
// expected, '.' blocked as expected, 'A' reached but should not have,
// 'B' blocked but should not have been.
func (nw *npWorld) table(want, got map[probeKey]bool) string {
	return nw.tableOf(want, got, func(d *npEndpoint) string { return d.name }) +
		"\nthrough each pod's Service:\n" + nw.tableOf(want, got, svcName)
}

func (nw *npWorld) tableOf(want, got map[probeKey]bool, dstKey func(*npEndpoint) string) string {
	dsts := append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt)
	sources := append(append(append([]*npEndpoint{}, nw.pods...), nw.ext, nw.mgmt), nw.nodeEPs...)
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s", "from \\ to")
	for _, d := range dsts {
		fmt.Fprintf(&b, " %-14s", d.name)
	}
	b.WriteString("\n")
	for _, s := range sources {
		fmt.Fprintf(&b, "%-14s", s.name)
		for _, d := range dsts {
			cell := ""
			for _, p := range npPorts {
				k := probeKey{s.name, dstKey(d), p}
				w, ok := want[k]
				g := got[k]
				switch {
				case !ok:
					cell += " "
				case w && g:
					cell += "+"
				case !w && !g:
					cell += "."
				case g:
					cell += "A"
				default:
					cell += "B"
				}
			}
			fmt.Fprintf(&b, " %-14s", cell)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// runCase replaces every policy by the case's, then probes until the whole
// matrix is as expected (the agents apply policies within a second; a
// matrix that never matches fails after 20 s, printing the last one).
func (nw *npWorld) runCase(t *testing.T, c npCase) {
	nw.clearPolicies(t)
	nw.apply(t, c.nps, c.cnps)
	want := nw.expected(c.expect)
	var got map[probeKey]bool
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = nw.observe(t)
		if t.Failed() {
			return
		}
		if mapsEqual(want, got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reachability differs ('+' reached, '.' blocked, 'A' reached but should not, 'B' blocked but should not; ports tcp/80 tcp/81 udp/80 udp/81):\n%s\n%s",
				nw.table(want, got), nw.countedFlows())
		}
	}
}

// countedFlows lists, for each node, the conntrack-state and policy flows
// that counted packets: where a wrong verdict came from.
func (nw *npWorld) countedFlows() string {
	var b strings.Builder
	for _, n := range nw.nodes {
		out, err := n.ovs.cmd("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "--no-names", "unix:"+n.ovs.dir+"/br-int.mgmt")
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", n.name, err)
			continue
		}
		fmt.Fprintf(&b, "flows of %s that counted packets (conntrack state and policy):\n", n.name)
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "n_packets=0,") {
				continue
			}
			for _, tbl := range []string{"table=3,", "table=10,", "table=11,", "table=12,", "table=13,", "table=14,", "table=15,", "table=16,"} {
				if strings.Contains(l, tbl) {
					b.WriteString(l + "\n")
				}
			}
		}
	}
	return b.String()
}

func mapsEqual(a, b map[probeKey]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if g, ok := b[k]; !ok || g != v {
			return false
		}
	}
	return true
}

func (nw *npWorld) apply(t *testing.T, nps []*networkingv1.NetworkPolicy, cnps []*cnp.ClusterNetworkPolicy) {
	ctx := context.Background()
	for _, p := range nps {
		if _, err := nw.cluster.Client.NetworkingV1().NetworkPolicies(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create NetworkPolicy %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	for _, p := range cnps {
		u, err := cnp.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nw.dyn.Resource(cnp.Resource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterNetworkPolicy %s: %v", p.Name, err)
		}
	}
}

func (nw *npWorld) clearPolicies(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{"x", "y", "z", "kube-system"} {
		if err := nw.cluster.Client.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := nw.dyn.Resource(cnp.Resource).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range list.Items {
		if err := nw.dyn.Resource(cnp.Resource).Delete(ctx, item.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

func (nw *npWorld) pod(name string) *npEndpoint {
	for _, p := range nw.pods {
		if p.name == name {
			return p
		}
	}
	nw.t.Fatalf("no pod %s", name)
	return nil
}

// runningConnection: y/a keeps one TCP connection to x/a. A policy that
// isolates x/a but allows y leaves it running while new connections from
// z are refused; an Admin deny of y stops it; removing the deny lets the
// same connection carry on.
func (nw *npWorld) runningConnection(t *testing.T) {
	nw.clearPolicies(t)
	ya, xa, za := nw.pod("y/a"), nw.pod("x/a"), nw.pod("z/a")
	cmd := exec.Command("ip", "netns", "exec", ya.netns, nw.exe)
	cmd.Env = append(os.Environ(), envHold+"="+xa.ip+":80")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }() //nolint:errcheck
	lines := make(chan string, 1000)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	// await reads states until cond says stop, failing after timeout.
	await := func(what string, timeout time.Duration, cond func(state string) bool) {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("%s: the connection ended", what)
				}
				if cond(strings.Fields(l)[0]) {
					return
				}
			case <-deadline:
				t.Fatalf("%s: not within %s", what, timeout)
			}
		}
	}
	okRun := 0
	await("the connection runs", 10*time.Second, func(s string) bool {
		if okRun = map[bool]int{true: okRun + 1, false: 0}[s == "ok"]; okRun >= 5 {
			return true
		}
		return false
	})
	probeOnce := func(src, dst *npEndpoint) bool {
		req, _ := json.Marshal(probeRequest{Timeout: time.Second, Targets: []probeTarget{{Addr: dst.ip, Proto: "tcp", Port: 80}}})
		cmd := exec.Command("ip", "netns", "exec", src.netns, nw.exe)
		cmd.Env = append(os.Environ(), envProbe+"="+string(req))
		o, _ := cmd.Output()
		return strings.TrimSpace(string(o)) == "[true]"
	}

	// 1. Isolate x/a, allowing namespace y: z is refused, y/a's connection
	// never stalls.
	nw.apply(t, []*networkingv1.NetworkPolicy{np("x", "allow-y", sel("pod", "a"), networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "y")}}}}})}, nil)
	integration.Eventually(t, 15*time.Second, "z/a refused by x/a", func() (bool, string) { return !probeOnce(za, xa), "z/a still reaches x/a" })
	stalls := 0
drain:
	for deadline := time.After(time.Second); ; {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "stall") {
				stalls++
			}
		case <-deadline:
			break drain
		}
	}
	if stalls > 1 { // one report may be taken just as a byte is in flight
		t.Fatalf("the allowed connection stalled %d times while the policy was applied", stalls)
	}
	await("the connection still runs under the new policy", 5*time.Second, func(s string) bool { return s == "ok" })

	// 2. An Admin deny of y: the running connection stops.
	deny := &cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-y-to-x"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 5,
		Subject: cnp.Subject{Namespaces: sel("ns", "x")},
		Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: sel("ns", "y")}}}}}}
	nw.apply(t, nil, []*cnp.ClusterNetworkPolicy{deny})
	stallRun := 0
	await("the denied connection stops", 15*time.Second, func(s string) bool {
		if stallRun = map[bool]int{true: stallRun + 1, false: 0}[s == "stall"]; stallRun >= 10 {
			return true
		}
		return false
	})
	// 3. Deny removed: the same connection carries on (TCP retransmits).
	if err := nw.dyn.Resource(cnp.Resource).Delete(context.Background(), deny.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await("the connection resumes", 20*time.Second, func(s string) bool { return s == "ok" })
	nw.clearPolicies(t)
}

// deniedMetrics: an agent counts what a policy dropped under its name and
// direction, and logs it.
func (nw *npWorld) deniedMetrics(t *testing.T) {
	nw.clearPolicies(t)
	xa, ya := nw.pod("x/a"), nw.pod("y/a")
	nw.apply(t, []*networkingv1.NetworkPolicy{np("x", "deny-to-a", sel("pod", "a"), networkingv1.NetworkPolicySpec{
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}})}, nil)
	n := xa.node
	m := agentAddr.FindStringSubmatch(nw.lab.logFile("agent-" + n.name))
	if m == nil {
		t.Fatal("the agent did not log its metrics address")
	}
	metric := `t1route_policy_denied_packets_total{direction="ingress",kind="NetworkPolicy",namespace="x",policy="deny-to-a"}`
	integration.Eventually(t, 20*time.Second, "the denied packets counted", func() (bool, string) {
		req, _ := json.Marshal(probeRequest{Timeout: 300 * time.Millisecond, Targets: []probeTarget{{Addr: xa.ip, Proto: "udp", Port: 80}}})
		cmd := exec.Command("ip", "netns", "exec", ya.netns, nw.exe)
		cmd.Env = append(os.Environ(), envProbe+"="+string(req))
		cmd.Run() //nolint:errcheck
		out, _ := inNetns(n.ns, "curl", "-s", "http://"+m[1]+"/metrics")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, metric+" ") && !strings.HasSuffix(line, " 0") {
				return true, line
			}
		}
		return false, "no " + metric + " > 0 in the agent's metrics"
	})
	integration.Eventually(t, 20*time.Second, "a log line naming the policy", func() (bool, string) {
		log := nw.lab.logFile("agent-" + n.name)
		return strings.Contains(log, "denied by policy") && strings.Contains(log, "NetworkPolicy x/deny-to-a"), lastLines(log, 5)
	})
	nw.clearPolicies(t)
}

// ---- the cases ----

func np(ns, name string, podSelector *metav1.LabelSelector, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	spec.PodSelector = *podSelector
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func ptypes(ts ...networkingv1.PolicyType) []networkingv1.PolicyType { return ts }

func from(peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers}}
}

func port(proto corev1.Protocol, p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func npCases() []npCase {
	all := &metav1.LabelSelector{}
	ingress, egress := networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress
	end := int32(90)
	guard, err := guard.ManagementGuard([]netip.Prefix{netip.MustParsePrefix("203.0.113.32/28")},
		append(config.DefaultGuardSelectors(), mustGuardSelector("z:pod=c")))
	if err != nil {
		panic(err)
	}
	return []npCase{
		{name: "no policy: everything reaches everything",
			expect: func(s, d *npEndpoint, p npPort) bool { return true }},
		{name: "default deny ingress in x",
			nps:    []*networkingv1.NetworkPolicy{np("x", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress)})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.in("x") }},
		{name: "default deny egress in x",
			nps:    []*networkingv1.NetworkPolicy{np("x", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(egress)})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !s.in("x") }},
		{name: "default deny both ways in x, y and z: only kube-system and the hosts talk; nodes still reach their pods",
			nps: []*networkingv1.NetworkPolicy{np("x", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress, egress)}),
				np("y", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress, egress)}),
				np("z", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress, egress)})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !s.in("x", "y", "z") && !d.in("x", "y", "z") }},
		{name: "to x/a from its own namespace (podSelector {})",
			nps:    []*networkingv1.NetworkPolicy{np("x", "same-ns", sel("pod", "a"), networkingv1.NetworkPolicySpec{Ingress: from(networkingv1.NetworkPolicyPeer{PodSelector: all})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.in("x") }},
		{name: "to x/a from namespace y (namespaceSelector)",
			nps:    []*networkingv1.NetworkPolicy{np("x", "from-y", sel("pod", "a"), networkingv1.NetworkPolicySpec{Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y")})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.in("y") }},
		{name: "namespace and pod selector in one peer: to x/a from pods b of namespace y",
			nps: []*networkingv1.NetworkPolicy{np("x", "from-yb", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "b")})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.is("y/b") }},
		{name: "namespace or pod selector in two peers: to x/a from namespace y or from x/b",
			nps: []*networkingv1.NetworkPolicy{np("x", "from-y-or-b", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y")}, networkingv1.NetworkPolicyPeer{PodSelector: sel("pod", "b")})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.in("y") || s.is("x/b") }},
		{name: "a port: to x/a only on TCP 80, from anywhere",
			nps: []*networkingv1.NetworkPolicy{np("x", "tcp-80", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, intstr.FromInt32(80))}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || p == npPort{"tcp", 80} }},
		{name: "a named port: to x/a on serve-81-udp",
			nps: []*networkingv1.NetworkPolicy{np("x", "named", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, intstr.FromString("serve-81-udp"))}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || p == npPort{"udp", 81} }},
		{name: "endPort: to x/a on TCP 81-90",
			nps: []*networkingv1.NetworkPolicy{np("x", "range", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{func() networkingv1.NetworkPolicyPort {
					p := port(corev1.ProtocolTCP, intstr.FromInt32(81))
					p.EndPort = &end
					return p
				}()}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || p == npPort{"tcp", 81} }},
		{name: "ipBlock with except: to x/a from 203.0.113.0/24 except the external host 203.0.113.10",
			nps: []*networkingv1.NetworkPolicy{np("x", "block", sel("pod", "a"), networkingv1.NetworkPolicySpec{
				Ingress: from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.10/32"}}})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.is("mgmt") }},
		{name: "egress to the external host only, from namespace y",
			nps: []*networkingv1.NetworkPolicy{np("y", "to-ext", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(egress),
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.10/32"}}}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !s.in("y") || d.is("ext") }},
		{name: "egress by namespace and port: x/a only to namespace z on UDP 80",
			nps: []*networkingv1.NetworkPolicy{np("x", "to-z-udp", sel("pod", "a"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(egress),
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "z")}},
					Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, intstr.FromInt32(80))}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !s.is("x/a") || d.in("z") && p == npPort{"udp", 80} }},
		{name: "policyTypes [Ingress]: the policy's egress rules do not isolate",
			nps: []*networkingv1.NetworkPolicy{np("x", "ingress-only", sel("pod", "a"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress),
				Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y")}),
				Egress:  []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.51.100.99/32"}}}}}})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.in("y") }},
		{name: "two policies are a union: to x/a from y/a and from z/b",
			nps: []*networkingv1.NetworkPolicy{
				np("x", "from-ya", sel("pod", "a"), networkingv1.NetworkPolicySpec{Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "a")})}),
				np("x", "from-zb", sel("pod", "a"), networkingv1.NetworkPolicySpec{Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "z"), PodSelector: sel("pod", "b")})})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("x/a") || s.is("y/a", "z/b") }},
		{name: "ingress and egress isolation are independent: x/a sends nothing but is reached; x/b is reached by nothing but sends",
			nps: []*networkingv1.NetworkPolicy{np("x", "a-no-egress", sel("pod", "a"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(egress)}),
				np("x", "b-no-ingress", sel("pod", "b"), networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress)})},
			expect: func(s, d *npEndpoint, p npPort) bool { return !s.is("x/a") && !d.is("x/b") }},
		{name: "an Admin Deny beats a NetworkPolicy Allow: y cannot reach x although x allows everyone",
			nps: []*networkingv1.NetworkPolicy{np("x", "allow-all", all, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})},
			cnps: []*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "deny-y-to-x"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 10,
				Subject: cnp.Subject{Namespaces: sel("ns", "x")}, Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: sel("ns", "y")}}}}}}},
			expect: func(s, d *npEndpoint, p npPort) bool { return !(d.in("x") && s.in("y")) }},
		{name: "an Admin Pass hands y's traffic to NetworkPolicy (which allows y/a only); the lower Admin Deny stops everyone else",
			nps: []*networkingv1.NetworkPolicy{np("x", "from-ya", all, networkingv1.NetworkPolicySpec{
				Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "a")})})},
			cnps: []*cnp.ClusterNetworkPolicy{
				{ObjectMeta: metav1.ObjectMeta{Name: "pass-y"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 10, Subject: cnp.Subject{Namespaces: sel("ns", "x")},
					Ingress: []cnp.IngressRule{{Action: cnp.Pass, From: []cnp.IngressPeer{{Namespaces: sel("ns", "y")}}}}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "deny-pods"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 20, Subject: cnp.Subject{Namespaces: sel("ns", "x")},
					Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: all}}}}}}},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.in("x") || s.is("y/a") }},
		{name: "a Baseline Deny is overridden by a NetworkPolicy: x/a takes z; x/b and x/c fall to the Baseline (pods denied, hosts not)",
			nps: []*networkingv1.NetworkPolicy{np("x", "a-from-z", sel("pod", "a"), networkingv1.NetworkPolicySpec{Ingress: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("ns", "z")})})},
			cnps: []*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "baseline-deny"}, Spec: cnp.Spec{Tier: cnp.BaselineTier, Priority: 10,
				Subject: cnp.Subject{Namespaces: sel("ns", "x")}, Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: all}}}}}}},
			expect: func(s, d *npEndpoint, p npPort) bool {
				switch {
				case d.is("x/a"):
					return s.in("z")
				case d.in("x"):
					return !s.isPod()
				}
				return true
			}},
		{name: "an Admin Accept beats a NetworkPolicy default deny: z reaches x/a, nothing else reaches x",
			nps: []*networkingv1.NetworkPolicy{np("x", "deny", all, networkingv1.NetworkPolicySpec{PolicyTypes: ptypes(ingress)})},
			cnps: []*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "accept-z"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 10,
				Subject: cnp.Subject{Pods: &cnp.NamespacedPod{NamespaceSelector: *sel("ns", "x"), PodSelector: *sel("pod", "a")}},
				Ingress: []cnp.IngressRule{{Action: cnp.Accept, From: []cnp.IngressPeer{{Namespaces: sel("ns", "z")}}}}}}},
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.in("x") || d.is("x/a") && s.in("z") }},
		{name: "an Admin egress Deny to a network: y cannot reach the external host on UDP 80",
			cnps: []*cnp.ClusterNetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "no-udp-out"}, Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 10,
				Subject: cnp.Subject{Namespaces: sel("ns", "y")}, Egress: []cnp.EgressRule{{Action: cnp.Deny,
					To: []cnp.EgressPeer{{Networks: []string{"203.0.113.10/32"}}}, Protocols: []cnp.Protocol{{UDP: &cnp.PortMatch{DestinationPort: &cnp.Port{Number: 80}}}}}}}}},
			expect: func(s, d *npEndpoint, p npPort) bool { return !(s.in("y") && d.is("ext") && p == npPort{"udp", 80}) }},
		{name: "the management guard: the CSI pod and the extra selector's z/c reach the management host; no other pod does",
			cnps:   guard,
			expect: func(s, d *npEndpoint, p npPort) bool { return !d.is("mgmt") || s.is("kube-system/csi", "z/c") }},
	}
}

func mustGuardSelector(s string) config.GuardSelector {
	g, err := config.ParseGuardSelector(s)
	if err != nil {
		panic(err)
	}
	return g
}
