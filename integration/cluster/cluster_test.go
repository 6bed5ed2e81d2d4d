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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestCluster brings a cluster up, proves both nodes run pods pulled from
// its registry, that the control plane does what a real cluster's does
// (podCIDRs, ServiceAccount tokens, kube-root-ca.crt, Services through
// kube-proxy, logs and exec through the kubelet), that the router, NSX
// Manager and external host are wired, and that Down leaves nothing.
func TestCluster(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	layout := imageLayout(t, "v0.0.0-cluster-test", false)
	start := time.Now()
	c := startCluster(t, Config{ImageLayout: layout}, "node-a-kubelet", "node-a-containerd", "kube-controller-manager")
	upTook := time.Since(start)
	k := c.Client

	t.Run("registry holds the images under the local address", func(t *testing.T) {
		if c.Images["t1route"] != c.Registry+"/t1route:test" || c.Images["t1route-node"] != c.Registry+"/t1route-node:test" {
			t.Fatalf("images pushed: %v", c.Images)
		}
	})
	t.Run("control plane: podCIDRs, ServiceAccounts, kube-root-ca.crt", func(t *testing.T) {
		seen := map[string]bool{}
		for _, n := range c.Nodes {
			cidr, err := c.waitPodCIDR(ctx, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			p, err := netip.ParsePrefix(cidr)
			if err != nil || !netip.MustParsePrefix(ClusterCIDR).Contains(p.Addr()) || seen[cidr] {
				t.Errorf("%s podCIDR %q: want a distinct /24 inside %s", n.Name, cidr, ClusterCIDR)
			}
			seen[cidr] = true
		}
		if err := waitFor(ctx, 30*time.Second, "default ServiceAccount and kube-root-ca.crt", func() (bool, error) {
			_, e1 := k.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			_, e2 := k.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			return e1 == nil && e2 == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nodes are NotReady until a network plugin is installed, then Ready", func(t *testing.T) {
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					t.Errorf("%s is Ready without a network plugin", n.Name)
				}
			}
		}
		start := time.Now()
		if err := c.InstallSmokeCNI(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNodes(ctx, 2*time.Minute, true); err != nil {
			t.Fatal(err)
		}
		t.Logf("nodes Ready %.1f s after the CNI install", time.Since(start).Seconds())
	})

	var pods []*corev1.Pod
	t.Run("a pod on each node: pulled from the registry, Ready with an address of its node's podCIDR", func(t *testing.T) {
		for _, n := range c.Nodes {
			start := time.Now()
			p, err := runEcho(ctx, c, n.Name, "echo-"+n.Name)
			if err != nil {
				t.Fatal(err)
			}
			node, _ := k.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			cidr := netip.MustParsePrefix(node.Spec.PodCIDR)
			if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !cidr.Contains(ip) {
				t.Errorf("pod on %s has IP %q, not in %s", n.Name, p.Status.PodIP, cidr)
			}
			t.Logf("pod on %s: created -> Ready in %.1f s, IP %s", n.Name, time.Since(start).Seconds(), p.Status.PodIP)
			pods = append(pods, p)
		}
	})
	if len(pods) != len(c.Nodes) {
		t.FailNow()
	}
	t.Run("the node reaches its pod (HTTP); the pod answers with its name", func(t *testing.T) {
		for i, n := range c.Nodes {
			out, err := n.Exec(ctx, "curl", "-s", "-m", "5", "http://"+pods[i].Status.PodIP+":8080/")
			if err != nil {
				t.Fatal(err)
			}
			var reply struct{ Hostname string }
			if json.Unmarshal([]byte(out), &reply) != nil || reply.Hostname != pods[i].Name {
				t.Errorf("%s -> %s: %q", n.Name, pods[i].Status.PodIP, out)
			}
		}
	})
	t.Run("a pod reaches a ClusterIP Service (kube-proxy) backed by a pod on its node, which sees the client's own IP", func(t *testing.T) {
		backend, err := runEcho(ctx, c, c.Nodes[1].Name, "echo-backend")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := k.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo-backend"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"pod": backend.Name},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !netip.MustParsePrefix(ServiceCIDR).Contains(netip.MustParseAddr(svc.Spec.ClusterIP)) {
			t.Errorf("ClusterIP %s outside %s", svc.Spec.ClusterIP, ServiceCIDR)
		}
		var out string
		if err := waitFor(ctx, 30*time.Second, "Service "+svc.Spec.ClusterIP, func() (bool, error) {
			out, _ = c.PodExec(ctx, pods[1], "curl", "-s", "-m", "2", "http://"+svc.Spec.ClusterIP+"/")
			return strings.Contains(out, backend.Name), nil
		}); err != nil {
			t.Fatalf("%v: last answer %q", err, out)
		}
		if !strings.Contains(out, `"remoteIP":"`+pods[1].Status.PodIP+`"`) {
			t.Errorf("the backend did not see the client pod's address %s: %s", pods[1].Status.PodIP, out)
		}
	})
	t.Run("this machine's Open vSwitch programs do not run inside the nodes", func(t *testing.T) {
		if out, err := c.Nodes[0].Exec(ctx, "ovs-ofctl", "--version"); err == nil {
			t.Errorf("ovs-ofctl ran on %s: %s", c.Nodes[0].Name, out)
		}
	})
	t.Run("kubectl logs and exec reach the kubelet", func(t *testing.T) {
		kubectl := filepath.Join(c.cfg.KubeBin, "kubectl")
		out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "exec", pods[0].Name, "--", "/usr/local/bin/t1route", "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "v0.0.0-cluster-test") {
			t.Errorf("kubectl exec: %v: %s", err, out)
		}
		out, err = exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "logs", pods[0].Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "serving") {
			t.Errorf("kubectl logs: %v: %s", err, out)
		}
	})
	t.Run("router, NSX Manager and external host are wired; the node's traffic leaves with its own address", func(t *testing.T) {
		env, err := os.ReadFile(c.NSXEnv)
		if err != nil || !strings.Contains(string(env), "NSXT_MANAGER_HOST="+NSXManagerIP+":443") || !strings.Contains(string(env), "NSXT_ROOT_CA_DATA_B64=") {
			t.Fatalf("nsx.env: %v\n%s", err, env)
		}
		// The external host reaches NSX Manager through the router; nsxsim
		// answers an unauthenticated call with NSX's 403.
		out, err := exec.Command("ip", "netns", "exec", c.ExternalNS, "curl", "-sk", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
			"https://"+NSXManagerIP+"/policy/api/v1/infra/tier-1s/"+Tier1).CombinedOutput()
		if err != nil || (string(out) != "403" && string(out) != "401") {
			t.Errorf("external host -> NSX Manager: %v %q", err, out)
		}
		// Without t1route, the router has no route to pods: that is t1route's job.
		out, _ = exec.Command("ip", "-n", c.RouterNS, "route", "show", "100.96.0.0/11", "root", "100.96.0.0/11").CombinedOutput()
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("the router has pod routes before t1route runs:\n%s", out)
		}
		// The node reaches the external host's echo through the router.
		echo, err := c.Nodes[0].Exec(ctx, "curl", "-s", "-m", "5", "http://"+ExternalIP+":8080/")
		if err != nil || !strings.Contains(echo, c.Nodes[0].IP) {
			t.Errorf("node -> external echo: %v %q", err, echo)
		}
	})
	fmt.Printf("cluster: up in %.1f s (%s)\n", upTook.Seconds(), timings(c.Timings))
}

func timings(ts []Timing) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s %.1f s", t.Phase, t.Took.Seconds()))
	}
	return strings.Join(parts, ", ")
}
