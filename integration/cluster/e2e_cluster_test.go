//go:build integration && e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/policy/cnp"

	"github.com/t1route/t1route/podroute/config"
)

// TestClusterRoutability installs t1route on a cluster of real nodes the
// way the README says (t1route render | kubectl apply -f -, unchanged) and
// checks with real pods what users rely on: the controller and agents run
// from the registry's images, the agent installs the CNI plugin, pods get
// podCIDR addresses, the Tier-1 routes every node's podCIDR, and traffic
// between pods, the external host and Services keeps its source address.
// It ends with `cluster routability: N passed, M failed`.
//
// CLUSTER_IMAGES names an OCI layout of make image's to use (make
// e2e-cluster passes .cache/image/oci); without it the test builds the
// images itself.
func TestClusterRoutability(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	layout := imageLayout(t, "v0.0.0-e2e-cluster", true)
	s := &steps{t: t}
	defer func() { fmt.Printf("cluster routability: %d passed, %d failed\n", s.pass, s.fail) }()
	s.fail++ // until the cluster is up
	c := startCluster(t, Config{ImageLayout: layout}, "node-a-kubelet", "node-b-kubelet")
	s.fail--
	state := c.State()
	k := c.Client
	t1route := filepath.Join(c.binDir, "t1route")
	ns := render.DefaultNamespace

	if !s.step("t1route render | kubectl apply -f -, unchanged", func(t *testing.T) { installT1route(ctx, t, c) }) {
		return
	}
	start := time.Now()
	s.step("controller Deployment: 2 Ready replicas on different nodes, one Lease holder", func(t *testing.T) {
		if err := waitController(ctx, c); err != nil {
			t.Fatal(err)
		}
		pods := podsOf(ctx, t, c, ns, render.ControllerName)
		if len(pods) != 2 || pods[0].Spec.NodeName == pods[1].Spec.NodeName {
			t.Errorf("controller pods: want 2 on different nodes, got %d", len(pods))
		}
		holder, err := leaseHolder(ctx, c, ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("controller Ready %.1f s after apply; Lease held by %s", time.Since(start).Seconds(), holder)
	})
	s.step("agent DaemonSet Ready on both nodes; both nodes Ready", func(t *testing.T) {
		if err := waitAgents(ctx, c); err != nil {
			t.Fatal(err)
		}
		t.Logf("agents and nodes Ready %.1f s after apply", time.Since(start).Seconds())
	})
	s.step("the agent installed t1route-cni and its conflist into every node's directories", func(t *testing.T) {
		for _, n := range c.Nodes {
			if out, err := n.Exec(ctx, "test", "-x", "/opt/cni/bin/t1route-cni"); err != nil {
				t.Errorf("%s: no executable /opt/cni/bin/t1route-cni: %v %s", n.Name, err, out)
			}
			out, err := n.Exec(ctx, "cat", "/etc/cni/net.d/10-t1route.conflist")
			if err != nil || !strings.Contains(out, `"t1route-cni"`) {
				t.Errorf("%s: /etc/cni/net.d/10-t1route.conflist: %v\n%s", n.Name, err, out)
			}
		}
	})

	// a1 and a2 on the first node, b on the second.
	var a1, a2, b *corev1.Pod
	if !s.step("echo pods on each node Ready through t1route-cni, with podCIDR addresses", func(t *testing.T) {
		names := []struct {
			name string
			node *Node
			p    **corev1.Pod
		}{{"echo-a1", c.Nodes[0], &a1}, {"echo-a2", c.Nodes[0], &a2}, {"echo-b", c.Nodes[1], &b}}
		// Created -> Ready as this test sees it: from the create call to the
		// first poll (every 100 ms) that finds the pod Ready.
		created, readyAt, pods := map[string]time.Time{}, map[string]time.Time{}, map[string]*corev1.Pod{}
		for _, x := range names {
			created[x.name] = time.Now()
			if err := createEcho(ctx, c, x.node.Name, x.name); err != nil {
				t.Fatal(err)
			}
		}
		if err := waitFor(ctx, 2*time.Minute, "echo pods Ready", func() (bool, error) {
			for _, x := range names {
				if _, ok := readyAt[x.name]; ok {
					continue
				}
				if p, err := k.CoreV1().Pods("default").Get(ctx, x.name, metav1.GetOptions{}); err == nil && ready(p) {
					readyAt[x.name], pods[x.name] = time.Now(), p
				}
			}
			return len(readyAt) == len(names), nil
		}); err != nil {
			t.Fatalf("%v: Ready: %v", err, readyAt)
		}
		for _, x := range names {
			p, took := pods[x.name], readyAt[x.name].Sub(created[x.name])
			node, err := k.CoreV1().Nodes().Get(ctx, x.node.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !netip.MustParsePrefix(node.Spec.PodCIDR).Contains(ip) {
				t.Errorf("%s on %s has IP %q, not in its podCIDR %s", x.name, x.node.Name, p.Status.PodIP, node.Spec.PodCIDR)
			}
			fmt.Printf("pod %s on %s: created -> Ready in %.2f s, IP %s\n", x.name, x.node.Name, took.Seconds(), p.Status.PodIP)
			*x.p = p
		}
	}) {
		return
	}
	s.step("the Tier-1 routes both nodes' podCIDRs to their nodes", func(t *testing.T) {
		var out string
		if err := waitFor(ctx, time.Minute, "routes on the Tier-1", func() (bool, error) {
			o, _ := exec.CommandContext(ctx, "ip", "-n", c.RouterNS, "route").CombinedOutput()
			out = string(o)
			for _, n := range c.Nodes {
				node, err := k.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
				if err != nil || !strings.Contains(out, node.Spec.PodCIDR+" via "+n.IP) {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
	})
	s.step("pod -> pod on one node and across nodes, the source address kept", func(t *testing.T) {
		for _, to := range []*corev1.Pod{a2, b} {
			echoFrom(ctx, t, c, a1, "http://"+to.Status.PodIP+":8080/", to.Name, a1.Status.PodIP)
		}
		echoFrom(ctx, t, c, b, "http://"+a1.Status.PodIP+":8080/", a1.Name, b.Status.PodIP)
	})
	s.step("external host -> pod: the pod sees the external address", func(t *testing.T) {
		for _, to := range []*corev1.Pod{a1, b} {
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "5", "http://"+to.Status.PodIP+":8080/").CombinedOutput()
			if err != nil || !echoed(string(out), to.Name, ExternalIP) {
				t.Errorf("external host -> %s: %v %q", to.Status.PodIP, err, out)
			}
		}
	})
	s.step("pod -> external host without SNAT: the external echo sees the pod address", func(t *testing.T) {
		for _, from := range []*corev1.Pod{a1, b} {
			out, err := c.PodExec(ctx, from, "curl", "-s", "-m", "5", "http://"+ExternalIP+":8080/")
			if err != nil || !strings.Contains(out, `"remoteIP":"`+from.Status.PodIP+`"`) {
				t.Errorf("%s -> external echo: %v %q", from.Name, err, out)
			}
		}
	})
	s.step("the management guard: pods cannot reach the NSX Manager's network, the vSphere CSI driver's pod can, the external host still answers", func(t *testing.T) {
		rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cnps := dynamic.NewForConfigOrDie(rc).Resource(cnp.Resource)
		if err := waitFor(ctx, 60*time.Second, "the controller's guard policies", func() (bool, error) {
			l, err := cnps.List(ctx, metav1.ListOptions{LabelSelector: guard.Selector.String()})
			return err == nil && len(l.Items) == len(config.DefaultGuardSelectors())+1, nil
		}); err != nil {
			t.Fatal(err)
		}
		csi := echoPod(c, c.Nodes[1].Name, "vsphere-csi-node-e2e")
		csi.Namespace, csi.Labels = metav1.NamespaceSystem, map[string]string{"app": "vsphere-csi-node"}
		if _, err := k.CoreV1().Pods(csi.Namespace).Create(ctx, csi, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer k.CoreV1().Pods(csi.Namespace).Delete(ctx, csi.Name, metav1.DeleteOptions{}) //nolint:errcheck
		if err := waitFor(ctx, 90*time.Second, "the CSI pod Ready", func() (bool, error) {
			p, err := k.CoreV1().Pods(csi.Namespace).Get(ctx, csi.Name, metav1.GetOptions{})
			if err == nil && ready(p) {
				csi = p
			}
			return err == nil && ready(p), nil
		}); err != nil {
			t.Fatal(err)
		}
		manager := "https://" + NSXManagerIP + "/"
		reaches := func(p *corev1.Pod) bool {
			// Any HTTP answer (NSX asks for credentials) is reaching it.
			out, err := c.PodExec(ctx, p, "curl", "-sk", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", manager)
			return err == nil && strings.TrimSpace(out) != "000"
		}
		// The agents enforce ClusterNetworkPolicies once their CRD is served
		// (they look again every 30 s).
		if err := waitFor(ctx, 90*time.Second, "the guard in force on both nodes", func() (bool, error) {
			return !reaches(a1) && !reaches(b), nil
		}); err != nil {
			t.Fatal(err)
		}
		if !reaches(csi) {
			t.Errorf("the vSphere CSI driver's pod cannot reach %s", manager)
		}
		for _, from := range []*corev1.Pod{a1, b} {
			if out, err := c.PodExec(ctx, from, "curl", "-s", "-m", "5", "http://"+ExternalIP+":8080/"); err != nil || !strings.Contains(out, from.Status.PodIP) {
				t.Errorf("%s -> external host under the guard: %v %q", from.Name, err, out)
			}
		}
	})
	s.step("kubelet readiness and liveness probes reach the pods", func(t *testing.T) {
		for _, p := range []*corev1.Pod{a1, a2, b} {
			cur, err := k.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !ready(cur) || len(cur.Status.ContainerStatuses) != 1 || cur.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("%s: Ready %v, container statuses %+v", p.Name, ready(cur), cur.Status.ContainerStatuses)
			}
		}
	})
	s.step("pod -> ClusterIP Service (kube-proxy) across nodes, the source address kept", func(t *testing.T) {
		svc, err := k.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo-b"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"pod": b.Name},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out string
		if err := waitFor(ctx, 30*time.Second, "Service "+svc.Spec.ClusterIP, func() (bool, error) {
			out, _ = c.PodExec(ctx, a1, "curl", "-s", "-m", "2", "http://"+svc.Spec.ClusterIP+"/")
			return echoed(out, b.Name, a1.Status.PodIP), nil
		}); err != nil {
			t.Fatalf("%v: last answer %q", err, out)
		}
	})
	s.step("t1route check from the external host: every node's route on the Tier-1, realized; --probe reaches a pod on each node", func(t *testing.T) {
		// As an operator's workstation outside the cluster would: the API
		// server at its own address, NSX Manager and the pods through the
		// Tier-1.
		env, err := exportLines(c.NSXEnv)
		if err != nil {
			t.Fatal(err)
		}
		check := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, t1route, "check", "--kubeconfig", c.InternalKubeconfig,
			"--probe", a1.Status.PodIP, "--probe", b.Status.PodIP)
		check.Env = append(os.Environ(), env...)
		out, err := check.CombinedOutput()
		if err != nil || strings.Contains(string(out), "FAIL") {
			t.Errorf("t1route check: %v\n%s", err, out)
		}
		for _, n := range c.Nodes {
			node, err := k.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("PASS route node=%s %s via %s (realized)", n.Name, node.Spec.PodCIDR, n.IP); !strings.Contains(string(out), want) {
				t.Errorf("t1route check did not say %q:\n%s", want, out)
			}
		}
		for _, p := range []*corev1.Pod{a1, b} {
			if !strings.Contains(string(out), p.Status.PodIP) {
				t.Errorf("t1route check did not probe %s:\n%s", p.Status.PodIP, out)
			}
		}
	})
	// The liveness check takes 20 to 30 s of the kubelet's probing: the
	// agent on b's node hangs while the steps up to the drain (which need
	// no agent there) run.
	var hang *agentHang
	defer func() { hang.resume() }() //nolint:errcheck // for early exits
	s.step("liveness, begun: the agent on "+b.Spec.NodeName+" hung (SIGSTOP); the next steps run meanwhile", func(t *testing.T) {
		hang = hangAgent(ctx, t, c, b.Spec.NodeName)
	})
	s.step("deleting a pod frees its address", func(t *testing.T) {
		node := c.Nodes[0]
		reserved := func() (bool, error) {
			out, err := node.Exec(ctx, "sh", "-c", "ls /var/lib/cni/networks/*/"+a2.Status.PodIP)
			return err == nil && strings.TrimSpace(out) != "", nil
		}
		if ok, _ := reserved(); !ok {
			t.Fatalf("%s's address %s is not reserved in %s's /var/lib/cni/networks", a2.Name, a2.Status.PodIP, node.Name)
		}
		if err := k.CoreV1().Pods("default").Delete(ctx, a2.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, time.Minute, a2.Name+" gone and "+a2.Status.PodIP+" free", func() (bool, error) {
			_, err := k.CoreV1().Pods("default").Get(ctx, a2.Name, metav1.GetOptions{})
			r, _ := reserved()
			return apierrors.IsNotFound(err) && !r, nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	s.step("the controller leader's pod deleted: the other replica takes over", func(t *testing.T) {
		holder, err := leaseHolder(ctx, c, ns)
		if err != nil {
			t.Fatal(err)
		}
		var leader, other *corev1.Pod
		for _, p := range podsOf(ctx, t, c, ns, render.ControllerName) {
			if strings.HasPrefix(holder, p.Spec.NodeName+"_") {
				leader = &p
			} else {
				other = &p
			}
		}
		if leader == nil || other == nil {
			t.Fatalf("Lease holder %q is not one of the two controller pods", holder)
		}
		// The leader's node cordoned first: otherwise the Deployment's
		// replacement pod, started there within a second, may win the
		// released Lease before the standby's next retry (seen in every run).
		cordon := func(on bool) error {
			_, err := k.CoreV1().Nodes().Patch(ctx, leader.Spec.NodeName, types.MergePatchType,
				[]byte(fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)), metav1.PatchOptions{})
			return err
		}
		if err := cordon(true); err != nil {
			t.Fatal(err)
		}
		took := time.Now()
		if err := k.CoreV1().Pods(ns).Delete(ctx, leader.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		var now string
		if err := waitFor(ctx, time.Minute, "the standby holding the Lease", func() (bool, error) {
			now, _ = leaseHolder(ctx, c, ns)
			return strings.HasPrefix(now, other.Spec.NodeName+"_"), nil
		}); err != nil {
			t.Errorf("%v: holder %q (was %q)", err, now, holder)
		} else {
			t.Logf("the standby %s (%s) took over from %s in %.1f s", other.Name, now, holder, time.Since(took).Seconds())
		}
		if err := cordon(false); err != nil {
			t.Fatal(err)
		}
		if err := waitController(ctx, c); err != nil {
			t.Error(err)
		}
		// The new leader keeps the routes: external host -> pod still works.
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "5", "http://"+b.Status.PodIP+":8080/").CombinedOutput()
		if err != nil || !echoed(string(out), b.Name, ExternalIP) {
			t.Errorf("external host -> %s after the takeover: %v %q", b.Status.PodIP, err, out)
		}
	})
	s.step("an upgrade (rollout restart) finishes on two nodes, one replica at a time; one Lease holder after", func(t *testing.T) {
		// Both nodes hold a replica and its host port: a surge pod would
		// have nowhere to go.
		kubectl := filepath.Join(c.cfg.KubeBin, "kubectl")
		before, err := leaseHolder(ctx, c, ns)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Now()
		for _, args := range [][]string{{"rollout", "restart", "deployment/" + render.ControllerName},
			{"rollout", "status", "deployment/" + render.ControllerName, "--timeout=90s"}} {
			if out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", c.Kubeconfig, "-n", ns}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		pods := podsOf(ctx, t, c, ns, render.ControllerName)
		if len(pods) != 2 || pods[0].Spec.NodeName == pods[1].Spec.NodeName {
			t.Errorf("controller pods after the rollout: want 2 on different nodes, got %d", len(pods))
		}
		// Both old replicas are gone: one of the new ones must hold the Lease.
		var holder string
		if err := waitFor(ctx, 30*time.Second, "a new replica holding the Lease", func() (bool, error) {
			holder, _ = leaseHolder(ctx, c, ns)
			return holder != "" && holder != before, nil
		}); err != nil {
			t.Errorf("%v: holder %q (before the rollout %q)", err, holder, before)
		}
		t.Logf("rollout finished in %.1f s; Lease held by %s", time.Since(took).Seconds(), holder)
	})
	s.step("liveness: the kubelet restarts the hung agent, Ready again; its node's pods routed throughout", func(t *testing.T) {
		if hang == nil {
			t.Fatal("the agent was not hung")
		}
		hang.finish(ctx, t, c, b, a1)
	})
	s.step("a node drained and deleted: its route leaves the Tier-1, the other node's stays", func(t *testing.T) {
		gone, kept := c.Nodes[1], c.Nodes[0]
		cidrs := map[string]string{}
		for _, n := range c.Nodes {
			node, err := k.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cidrs[n.Name] = node.Spec.PodCIDR
		}
		if _, err := k.CoreV1().Nodes().Patch(ctx, gone.Name, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// Drain: every pod but the DaemonSets' (what kubectl drain evicts).
		pods, err := k.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + gone.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "DaemonSet" {
				continue
			}
			if err := k.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
		// The machine goes away (its kubelet would register the node again).
		gone.kubelet.stop(10 * time.Second)
		if err := k.CoreV1().Nodes().Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		var out string
		if err := waitFor(ctx, time.Minute, gone.Name+"'s route removed", func() (bool, error) {
			o, _ := exec.CommandContext(ctx, "ip", "-n", c.RouterNS, "route").CombinedOutput()
			out = string(o)
			return !strings.Contains(out, cidrs[gone.Name]+" "), nil
		}); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if !strings.Contains(out, cidrs[kept.Name]+" via "+kept.IP) {
			t.Errorf("%s's route %s went too:\n%s", kept.Name, cidrs[kept.Name], out)
		}
	})
	s.step("teardown leaves no process, namespace, mount, cgroup, iptables chain or host path", func(t *testing.T) {
		if err := c.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
		if left := Leftovers(state); len(left) > 0 {
			t.Errorf("left behind after Down:\n  %s", strings.Join(left, "\n  "))
		}
	})
}

// steps runs named subtests and counts them.
type steps struct {
	t          *testing.T
	pass, fail int
}

func (s *steps) step(name string, fn func(t *testing.T)) bool {
	ok := s.t.Run(name, fn)
	if ok {
		s.pass++
	} else {
		s.fail++
	}
	return ok
}

func podsOf(ctx context.Context, t *testing.T, c *Cluster, ns, app string) []corev1.Pod {
	t.Helper()
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	return pods
}

// leaseHolder returns the holder of the controller's Lease.
func leaseHolder(ctx context.Context, c *Cluster, ns string) (string, error) {
	l, err := c.Client.CoordinationV1().Leases(ns).Get(ctx, render.ControllerName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the controller's Lease %s/%s: %w", ns, render.ControllerName, err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "", fmt.Errorf("the controller's Lease %s/%s has no holder", ns, render.ControllerName)
	}
	return *l.Spec.HolderIdentity, nil
}

// echoed reports whether out is t1route echo's answer from hostname to a
// client with address remote.
func echoed(out, hostname, remote string) bool {
	var r struct {
		Hostname string
		RemoteIP string `json:"remoteIP"`
	}
	return json.Unmarshal([]byte(out), &r) == nil && r.Hostname == hostname && r.RemoteIP == remote
}

// echoFrom fetches url from pod from, retrying briefly (a fresh route or
// flow), and checks that pod to answered and saw the address remote.
func echoFrom(ctx context.Context, t *testing.T, c *Cluster, from *corev1.Pod, url, to, remote string) {
	t.Helper()
	var out string
	if err := waitFor(ctx, 20*time.Second, from.Name+" -> "+url, func() (bool, error) {
		out, _ = c.PodExec(ctx, from, "curl", "-s", "-m", "2", url)
		return echoed(out, to, remote), nil
	}); err != nil {
		t.Errorf("%v: last answer %q (want %s answering %s)", err, out, to, remote)
	}
}
