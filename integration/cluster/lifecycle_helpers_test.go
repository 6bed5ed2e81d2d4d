//go:build integration && e2e

package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/deploy/image/builder"
	"github.com/t1route/t1route/deploy/render"
)

// release is a build of t1route an install or upgrade applies: the
// t1route binary that renders its manifests and its images in the
// cluster's registry.
type release struct {
	version string
	bin     string // t1route of this release (render)
	image   string // its t1route image in the cluster's registry
}

// previousRelease is the release an upgrade starts from, built by
// upgrade-from.sh into T1ROUTE_UPGRADE_FROM (make e2e-upgrade builds it,
// once per pinned commit, into .cache/upgrade/<commit>).
func previousRelease(ctx context.Context, t *testing.T, c *Cluster) release {
	t.Helper()
	dir := os.Getenv("T1ROUTE_UPGRADE_FROM")
	if dir == "" {
		t.Fatal("T1ROUTE_UPGRADE_FROM is not set: make e2e-upgrade builds the release to upgrade from (integration/cluster/upgrade-from.sh) and sets it")
	}
	v, err := os.ReadFile(filepath.Join(dir, "version"))
	if err != nil {
		t.Fatalf("T1ROUTE_UPGRADE_FROM=%s holds no built release (%v): run integration/cluster/upgrade-from.sh COMMIT %s", dir, err, dir)
	}
	imgs, err := c.PushImages(ctx, filepath.Join(dir, "image", "oci"))
	if err != nil {
		t.Fatal(err)
	}
	return release{version: strings.TrimSpace(string(v)), bin: filepath.Join(dir, "bin", "t1route"), image: imgs["t1route"]}
}

// thisRelease is this tree's: make image's images (CLUSTER_IMAGES), the
// t1route the cluster built.
func thisRelease(t *testing.T, c *Cluster) release {
	out, err := exec.Command(filepath.Join(c.binDir, "t1route"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	return release{version: strings.TrimSpace(string(out)), bin: filepath.Join(c.binDir, "t1route"), image: c.Images["t1route"]}
}

// apply runs `t1route render | kubectl apply -f -` of release r, as an
// install or an upgrade does.
func apply(ctx context.Context, t *testing.T, c *Cluster, r release) {
	t.Helper()
	env, err := exportLines(c.NSXEnv)
	if err != nil {
		t.Fatal(err)
	}
	rd := exec.CommandContext(ctx, r.bin, "render", "--image", r.image, "--datapath-type", "netdev")
	rd.Env = append(os.Environ(), env...)
	manifests, err := rd.Output()
	if err != nil {
		t.Fatalf("render (%s): %v", r.version, err)
	}
	ap := exec.CommandContext(ctx, filepath.Join(c.KubeBin(), "kubectl"), "--kubeconfig", c.Kubeconfig, "apply", "-f", "-")
	ap.Stdin = strings.NewReader(string(manifests))
	if out, err := ap.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply (%s): %v\n%s", r.version, err, out)
	}
}

// rollout waits for the agent DaemonSet and the controller Deployment to
// finish rolling out, and for both to be Ready.
func rollout(ctx context.Context, t *testing.T, c *Cluster, timeout time.Duration) {
	t.Helper()
	kubectl := filepath.Join(c.KubeBin(), "kubectl")
	for _, obj := range []string{"daemonset/" + render.AgentName, "deployment/" + render.ControllerName} {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig, "-n", render.DefaultNamespace, "rollout", "status",
			obj, fmt.Sprintf("--timeout=%ds", int(timeout.Seconds()))).CombinedOutput()
		if err != nil {
			t.Fatalf("rollout of %s: %v\n%s", obj, err, out)
		}
	}
	if err := waitAgents(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := waitController(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// workloadPod is a pod running t1route echo (HTTP and UDP on 8080) on node
// with labels.
func workloadPod(c *Cluster, node, name string, labels map[string]string) *corev1.Pod {
	p := echoPod(c, node, name)
	p.Spec.Containers[0].Args = []string{"echo", "--listen", ":8080", "--udp"}
	for k, v := range labels {
		p.Labels[k] = v
	}
	return p
}

// runPods creates pods and waits until each is Ready; it returns them as
// they are then.
func runPods(ctx context.Context, c *Cluster, pods ...*corev1.Pod) ([]*corev1.Pod, error) {
	for _, p := range pods {
		if _, err := c.Client.CoreV1().Pods(namespaceOf(p)).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	return waitPodsReady(ctx, c, 2*time.Minute, pods...)
}

func namespaceOf(p *corev1.Pod) string {
	if p.Namespace == "" {
		return "default"
	}
	return p.Namespace
}

// waitPodsReady waits until every pod is Ready (and Running, with an IP).
func waitPodsReady(ctx context.Context, c *Cluster, timeout time.Duration, pods ...*corev1.Pod) ([]*corev1.Pod, error) {
	out := make([]*corev1.Pod, len(pods))
	err := waitFor(ctx, timeout, "pods Ready", func() (bool, error) {
		for i, p := range pods {
			cur, err := c.Client.CoreV1().Pods(namespaceOf(p)).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || !ready(cur) || cur.Status.PodIP == "" {
				return false, nil
			}
			out[i] = cur
		}
		return true, nil
	})
	return out, err
}

// waitRestarted waits until every pod runs containers started at or after
// since and is Ready (after a node reboot its pods' statuses in the API say
// Ready until the restarted kubelet updates them).
func waitRestarted(ctx context.Context, c *Cluster, since time.Time, timeout time.Duration, pods ...*corev1.Pod) ([]*corev1.Pod, error) {
	out := make([]*corev1.Pod, len(pods))
	cut := since.Truncate(time.Second)
	err := waitFor(ctx, timeout, "pods restarted and Ready", func() (bool, error) {
		for i, p := range pods {
			cur, err := c.Client.CoreV1().Pods(namespaceOf(p)).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || !ready(cur) || cur.Status.PodIP == "" || len(cur.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			for _, s := range cur.Status.ContainerStatuses {
				if s.State.Running == nil || s.State.Running.StartedAt.Time.Before(cut) || !s.Ready {
					return false, nil
				}
			}
			out[i] = cur
		}
		return true, nil
	})
	return out, err
}

// logAgents logs, with their times, the lines of every agent pod's
// containers that tell of a handover or a restart.
func logAgents(ctx context.Context, t *testing.T, c *Cluster) {
	list, err := c.Client.CoreV1().Pods(render.DefaultNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	keep := []string{"standing by", "taking over", "took over", "stopped:", "forwarding", "restored", "datapath ready", "CNI configuration installed",
		"exited", "health port", "network policy enforcement ready", "not restored", "copying", "stopping"}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, render.AgentName) {
			continue
		}
		for _, ctr := range []string{"ovs", "agent"} {
			b, err := c.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: ctr, Timestamps: true}).DoRaw(ctx)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				for _, k := range keep {
					if strings.Contains(line, k) {
						if len(line) > 300 {
							line = line[:300]
						}
						t.Logf("%s/%s (%s): %s", p.Name, ctr, p.Spec.NodeName, line)
						break
					}
				}
			}
		}
	}
}

// ingressOnlyFrom is a NetworkPolicy isolating the pods labelled
// role=<target> for ingress, allowing pods labelled role=<from> and the
// external host.
func ingressOnlyFrom(target, from string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: target + "-from-" + from},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": target}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": from}}},
				{IPBlock: &networkingv1.IPBlock{CIDR: ExternalIP + "/32"}},
			}}},
		},
	}
}

// pushProber builds ./integration/cluster/prober into an image in the
// cluster's registry and returns its reference.
func pushProber(ctx context.Context, t *testing.T, c *Cluster) string {
	t.Helper()
	if err := builder.GoBuild(ctx, c.cfg.Root, c.binDir, nil, "./integration/cluster/prober"); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(0, 0)
	l, err := builder.Layer([]builder.File{{Path: "/prober", Mode: 0o755, Source: filepath.Join(c.binDir, "prober")}}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	img, err := builder.BuildImage(builder.Spec{Layers: []builder.NamedLayer{{Layer: l, CreatedBy: "prober"}},
		Entrypoint: []string{"/prober"}, Created: epoch})
	if err != nil {
		t.Fatal(err)
	}
	ref := c.Registry + "/prober:t1route"
	if err := builder.Push(ctx, ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// guardProbePod tries to reach NSX Manager (the management network the
// guard denies) from its first instant, every 10 ms.
func guardProbePod(image, node, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: new(int64), Containers: []corev1.Container{{
			Name: "prober", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"--target", NSXManagerIP + ":443"}}}},
	}
}

// guardLog is what a guard probe pod's containers printed: when each
// started probing, how many attempts, and every connection that got through.
type guardLog struct {
	starts    []time.Time
	attempts  int // the latest count of each container, summed
	connected []time.Time
}

// readGuardLog reads the log of the pod's current container and, if it was
// restarted or replaced, the previous one's.
func readGuardLog(ctx context.Context, c *Cluster, pod *corev1.Pod) guardLog {
	var g guardLog
	for _, previous := range []bool{true, false} {
		b, err := c.Client.CoreV1().Pods(namespaceOf(pod)).GetLogs(pod.Name, &corev1.PodLogOptions{Previous: previous}).DoRaw(ctx)
		if err != nil {
			continue
		}
		last := 0
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 4 && f[0] == "PROBING":
				if at, err := time.Parse(time.RFC3339Nano, f[3]); err == nil {
					g.starts = append(g.starts, at)
				}
			case len(f) == 2 && f[0] == "CONNECTED":
				at, _ := time.Parse(time.RFC3339Nano, f[1])
				g.connected = append(g.connected, at)
			case len(f) == 3 && f[0] == "COUNT":
				last, _ = strconv.Atoi(strings.TrimPrefix(f[1], "attempts="))
			}
		}
		g.attempts += last
	}
	return g
}

// within counts the times in [from, to].
func within(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// signalInContainer sends sig to the processes named comm (as
// /proc/PID/comm says) in container of the agent pod on node; it returns
// how many it signalled.
func signalInContainer(ctx context.Context, t *testing.T, c *Cluster, node, container, comm string, sig syscall.Signal) int {
	t.Helper()
	pod := agentPodOn(ctx, t, c, node)
	pids, err := c.ContainerPids(pod, container)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if err := syscall.Kill(pid, sig); err == nil {
			n++
		}
	}
	return n
}

// ovsPid returns the pid of the Open vSwitch daemon comm in node's agent
// pod (0 if none runs).
func ovsPid(ctx context.Context, t *testing.T, c *Cluster, node, comm string) int {
	pod := agentPodOn(ctx, t, c, node)
	pids, err := c.ContainerPids(pod, "ovs")
	if err != nil {
		return 0
	}
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == comm {
			return pid
		}
	}
	return 0
}

// routerRoutes returns the Tier-1 router's routes to pod CIDRs, "CIDR via IP".
func routerRoutes(ctx context.Context, c *Cluster) map[string]string {
	out, _ := exec.CommandContext(ctx, "ip", "-n", c.RouterNS, "route").Output()
	routes := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" && strings.HasPrefix(f[0], "100.") {
			routes[f[0]] = f[2]
		}
	}
	return routes
}
