//go:build integration && e2e

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/version"
)

// TestClusterUpgrade (make e2e-upgrade) is an operator's worst days on one
// cluster of real nodes, with traffic flowing throughout: release N (an
// older build of this repository, T1ROUTE_UPGRADE_FROM) is installed, and
// while probes run (a TCP connection held open and a UDP datagram and an
// ICMP echo every 100 ms: pod->pod across nodes into a pod that
// NetworkPolicy isolates, external host->pod, pod->external host) and
// denied traffic is tried every 100 ms (a pod the policy does not allow,
// pods towards the management network the guard denies, and a pod on the
// rebooted node that tries from its first instant), these happen in turn:
// the upgrade to this tree's release (controller and agent DaemonSet),
// ovs-vswitchd killed, ovsdb-server killed, the agent container killed, a
// node rebooted, the API server stopped, NSX Manager unreachable while
// nodes come and go, and the rollback to N. For each it prints
//
//	upgrade: <event> lost_probes=N max_gap_ms=M broken_connections=K denied_passed=D
//
// and it ends `upgrade: N passed, M failed`. An event passes when no held
// connection broke, nothing denied passed, its own checks hold, and its gap
// is within its target (1 s where a target is set). T1ROUTE_OUTAGE sets
// how long the API server and NSX are away (make test: 30 s; make
// e2e-outage: 5 and 10 minutes, as T1ROUTE_API_OUTAGE and T1ROUTE_NSX_OUTAGE).
func TestClusterUpgrade(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	began := time.Now()
	apiOutage := envDuration(t, "T1ROUTE_API_OUTAGE", envDuration(t, "T1ROUTE_OUTAGE", 30*time.Second))
	nsxOutage := envDuration(t, "T1ROUTE_NSX_OUTAGE", envDuration(t, "T1ROUTE_OUTAGE", 30*time.Second))
	layout := imageLayout(t, version.Version, true)
	passed, failed := 0, 0
	defer func() {
		if t.Failed() && passed+failed == 0 {
			failed++ // the setup failed
		}
		fmt.Printf("upgrade: %d passed, %d failed\n", passed, failed)
		fmt.Printf("upgrade: took %.0f s\n", time.Since(began).Seconds())
	}()
	c := startCluster(t, Config{ImageLayout: layout}, "node-a-kubelet", "node-b-kubelet", "kube-apiserver")
	clusterUp := time.Since(began)
	prev := previousRelease(ctx, t, c)
	next := thisRelease(t, c)
	proberImage := pushProber(ctx, t, c)
	nodeA, nodeB := c.Nodes[0], c.Nodes[1]
	t.Logf("cluster up in %.0f s; upgrading from %s (%s) to %s (%s)", clusterUp.Seconds(), prev.version, prev.image, next.version, next.image)

	// T1ROUTE_UPGRADE_ONLY=<text> runs only the events whose name holds it
	// (on this tree's release unless it names the upgrade): for debugging.
	only := os.Getenv("T1ROUTE_UPGRADE_ONLY")
	if only != "" && !strings.Contains("upgrade", only) {
		apply(ctx, t, c, next)
	} else {
		apply(ctx, t, c, prev)
	}
	rollout(ctx, t, c, 3*time.Minute)
	pods, err := runPods(ctx, c,
		workloadPod(c, nodeA.Name, "a1", map[string]string{"role": "friend"}),
		workloadPod(c, nodeB.Name, "b1", map[string]string{"role": "server"}),
		workloadPod(c, nodeA.Name, "x1", map[string]string{"role": "stranger"}),
		guardProbePod(proberImage, nodeB.Name, "guard-b"))
	if err != nil {
		t.Fatal(err)
	}
	a1, b1, x1, guardB := pods[0], pods[1], pods[2], pods[3]
	if _, err := c.Client.NetworkingV1().NetworkPolicies("default").Create(ctx, ingressOnlyFrom("server", "friend"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pr := &probes{}
	defer pr.stop()
	// The policy and the guard in force before any probe counts.
	if err := waitFor(ctx, 2*time.Minute, "the NetworkPolicy and the management guard in force", func() (bool, error) {
		return !tcpReaches(ctx, c, x1, b1.Status.PodIP+":8080") && tcpReaches(ctx, c, a1, b1.Status.PodIP+":8080") &&
			!tcpReaches(ctx, c, a1, NSXManagerIP+":443"), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := startProbes(c, pr, a1, b1, x1); err != nil {
		t.Fatal(err)
	}
	if err := pr.waitHealthy(ctx, 3*time.Second, time.Minute); err != nil {
		for _, l := range pr.window(time.Now().Add(-5*time.Second), time.Now()).lines {
			t.Log(l)
		}
		t.Fatal(err)
	}

	type event struct {
		name   string
		maxGap time.Duration // the target; 0: measured and reported only
		// brokenKnown, when set, says why held connections breaking in this
		// event is a known failure, reported but not failing the test.
		brokenKnown string
		run         func(t *testing.T)
	}
	events := []event{
		// Every agent pod replacement replaces the node's ovs-vswitchd: with
		// the userspace datapath the node forwards nothing from the old
		// switch's exit until the new one runs with the restored flows
		// (~0.3-0.5 s). The pods' permanent neighbour entries on the gateway
		// (podroute/node/neighbors) keep traffic from outside the node from
		// waiting another second for ARP after that; held TCP connections
		// then wait for one retransmission (docs/upgrading.md, Measured).
		{"upgrade " + prev.version + " -> " + next.version, time.Second, "", func(t *testing.T) {
			skew := watchSkew(ctx, c)
			apply(ctx, t, c, next)
			rollout(ctx, t, c, 5*time.Minute)
			t.Logf("releases running meanwhile: %s", skew())
			checkVersion(ctx, t, c, next)
			logAgents(ctx, t, c)
		}},
		// The agent DaemonSet replaced by pods of this release again (what
		// every later upgrade does): each node's new pod stands by and takes
		// over from the old one (agent/handover.go).
		{"agent rollout " + next.version + " (handover)", time.Second, "", func(t *testing.T) {
			if out, err := kubectlOut(ctx, c, "-n", render.DefaultNamespace, "rollout", "restart", "daemonset/"+render.AgentName); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			time.Sleep(2 * time.Second) // the DaemonSet controller sees the new template
			rollout(ctx, t, c, 5*time.Minute)
			logAgents(ctx, t, c)
		}},
		{"ovs-vswitchd kill", time.Second, "", func(t *testing.T) {
			debug := os.Getenv("T1ROUTE_UPGRADE_DEBUG") != ""
			stop := make(chan struct{})
			if debug {
				go func() { // what the new switch tracks and caches, every 200 ms
					for {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Millisecond):
						}
						ct, _ := ovsAppctl(ctx, c, nodeB.Name, "dpctl/dump-conntrack")
						dp, _ := ovsAppctl(ctx, c, nodeB.Name, "dpctl/dump-flows")
						fw, _ := exec.CommandContext(ctx, "ip", "netns", "exec", nodeB.NS, "iptables", "-nvxL", "FORWARD").CombinedOutput()
						kf, _ := exec.CommandContext(ctx, "ip", "netns", "exec", nodeB.NS, "iptables", "-nvxL", "KUBE-FORWARD").CombinedOutput()
						st, _ := exec.CommandContext(ctx, "ip", "netns", "exec", nodeB.NS, "nstat", "-az", "TcpExtTCPLossProbes", "IpExtInCsumErrors", "TcpInCsumErrors", "UdpInCsumErrors").CombinedOutput()
						t.Logf("%s conntrack:\n%s\ndatapath flows:\n%s\nnode FORWARD:\n%s\nKUBE-FORWARD:\n%s\nnstat:\n%s", time.Now().Format("15:04:05.000"), ct, dp, fw, kf, st)
					}
				}()
			}
			killOVSDaemon(ctx, t, c, nodeB.Name, "ovs-vswitchd")
			time.Sleep(2 * time.Second) // then the restart's log lines are written
			close(stop)
			logAgents(ctx, t, c)
		}},
		{"ovsdb-server kill", time.Second, "", func(t *testing.T) { killOVSDaemon(ctx, t, c, nodeB.Name, "ovsdb-server") }},
		{"agent container kill", time.Second, "", func(t *testing.T) {
			before := restartCount(agentPodOn(ctx, t, c, nodeB.Name), "agent")
			if n := signalInContainer(ctx, t, c, nodeB.Name, "agent", "t1route", syscall.SIGKILL); n == 0 {
				t.Fatal("no agent process to kill")
			}
			if err := waitFor(ctx, 2*time.Minute, "the agent container restarted and Ready", func() (bool, error) {
				p := agentPodOn(ctx, t, c, nodeB.Name)
				return restartCount(p, "agent") > before && containerReady(p, "agent"), nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"node reboot", time.Second, "", func(t *testing.T) {
			from := time.Now()
			// Nothing of node-b's pods survives a reboot: their streams end
			// here and start again with the pods the kubelet restarts.
			pr.remove(func(s *stream) bool { return s.from.name == b1.Name || s.to.name == b1.Name })
			kubeletLog := filepath.Join(c.Dir, "logs", nodeB.Name+"-kubelet.log")
			var logFrom int64
			if st, err := os.Stat(kubeletLog); err == nil {
				logFrom = st.Size()
			}
			if err := c.Reboot(ctx, nodeB); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s rebooted in %.1f s", nodeB.Name, time.Since(from).Seconds())
			if _, err := waitRestarted(ctx, c, from, 3*time.Minute, agentPodOn(ctx, t, c, nodeB.Name)); err != nil {
				t.Fatal(err)
			}
			again, err := waitRestarted(ctx, c, from, 3*time.Minute, b1, guardB)
			if err != nil {
				t.Fatal(err)
			}
			b1 = again[0]
			t.Logf("%s's pods Ready again %.1f s after the reboot began (b1 at %s)", nodeB.Name, time.Since(from).Seconds(), b1.Status.PodIP)
			if os.Getenv("T1ROUTE_UPGRADE_DEBUG") != "" { // what the kubelet did meanwhile
				b, _ := os.ReadFile(kubeletLog)
				lines := strings.Split(string(b[min(int(logFrom), len(b)):]), "\n")
				n := 0
				for _, l := range lines {
					if strings.Contains(l, "t1route-agent") && n < 60 {
						t.Log(l[:min(len(l), 400)])
						n++
					}
				}
			}
			if err := startProbes(c, pr, a1, b1, x1, b1.Name); err != nil {
				t.Fatal(err)
			}
			checkNodeClean(ctx, t, c, nodeB)
			g := readGuardLog(ctx, c, guardB)
			if within(g.starts, from, time.Now()) == 0 {
				t.Errorf("the guard probe pod on %s did not start probing again after the reboot (starts %v)", nodeB.Name, g.starts)
			}
		}},
		{fmt.Sprintf("API server stop %s", apiOutage), time.Second, "", func(t *testing.T) {
			apiServerOutage(ctx, t, c, apiOutage, a1)
		}},
		{fmt.Sprintf("NSX outage %s with nodes added and deleted", nsxOutage), time.Second, "", func(t *testing.T) {
			nsxOutageWithChurn(ctx, t, c, nsxOutage)
		}},
		// N (main before versioned releases) replaces its agent pods without
		// a handover or restored flows: 3-5 s without a switch per node, and
		// some held connections may end (the peer closes or resets them: 1
		// to 3 of 5 in two runs of five, with and without this release's
		// neighbour entries). A known failure of the way back to N,
		// reported, not hidden: docs/upgrading.md.
		{"rollback " + next.version + " -> " + prev.version, 0, "the older release replaces its agent pods without a handover", func(t *testing.T) {
			skew := watchSkew(ctx, c)
			apply(ctx, t, c, prev)
			rollout(ctx, t, c, 5*time.Minute)
			t.Logf("releases running meanwhile: %s", skew())
			checkVersion(ctx, t, c, prev)
		}},
	}
	for _, ev := range events {
		if only != "" && !strings.Contains(ev.name, only) {
			continue
		}
		from := time.Now()
		ok := t.Run(ev.name, ev.run)
		settled := pr.waitHealthy(ctx, 3*time.Second, 3*time.Minute)
		to := time.Now()
		time.Sleep(1500 * time.Millisecond) // the last datagrams' answers
		st := pr.window(from, to)
		g := readGuardLog(ctx, c, guardB)
		st.deniedPassed += within(g.connected, from, to)
		fmt.Printf("upgrade: %s lost_probes=%d max_gap_ms=%d broken_connections=%d denied_passed=%d\n",
			ev.name, st.lost, st.maxGap.Milliseconds(), st.broken, st.deniedPassed)
		var why []string
		if !ok {
			why = append(why, "its checks failed")
		}
		if settled != nil {
			why = append(why, "probes did not recover: "+settled.Error())
		}
		if st.broken > 0 && ev.brokenKnown == "" {
			why = append(why, fmt.Sprintf("%d held connections broke", st.broken))
		}
		if st.broken > 0 && ev.brokenKnown != "" {
			t.Logf("%s: %d held connections broke: a known failure (%s)", ev.name, st.broken, ev.brokenKnown)
		}
		if st.deniedPassed > 0 {
			why = append(why, fmt.Sprintf("%d denied attempts passed", st.deniedPassed))
		}
		if ev.maxGap > 0 && st.maxGap > ev.maxGap {
			why = append(why, fmt.Sprintf("a gap of %d ms (%s) exceeds the %s target", st.maxGap.Milliseconds(), st.worst, ev.maxGap))
		}
		t.Logf("%s: the largest gap was %s's", ev.name, st.worst)
		for _, l := range st.lines {
			t.Log(l)
		}
		if len(why) == 0 {
			passed++
			continue
		}
		failed++
		t.Errorf("%s: %s (%.0f s)", ev.name, strings.Join(why, "; "), to.Sub(from).Seconds())
	}
}

// watchSkew samples, every 500 ms, which image tags the running controller
// and agent pods have, until the returned function is called; that returns
// how long each combination lasted ("controller [a] agents [a b]: 4.5 s").
func watchSkew(ctx context.Context, c *Cluster) func() string {
	stop := make(chan struct{})
	done := make(chan string)
	go func() {
		seen := map[string]time.Duration{}
		var order []string
		last := time.Now()
		for {
			list, err := c.Client.CoreV1().Pods(render.DefaultNamespace).List(ctx, metav1.ListOptions{})
			if err == nil {
				tags := map[string]map[string]bool{"controller": {}, "agents": {}}
				for _, p := range list.Items {
					if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
						continue
					}
					role := "agents"
					if strings.HasPrefix(p.Name, render.ControllerName) {
						role = "controller"
					}
					tags[role][tagOf(p.Spec.Containers[0].Image)] = true
				}
				key := fmt.Sprintf("controller %v agents %v", sortedSet(tags["controller"]), sortedSet(tags["agents"]))
				if _, ok := seen[key]; !ok {
					order = append(order, key)
				}
				seen[key] += time.Since(last)
			}
			last = time.Now()
			select {
			case <-stop:
				var parts []string
				for _, k := range order {
					parts = append(parts, fmt.Sprintf("%s: %.1f s", k, seen[k].Seconds()))
				}
				done <- strings.Join(parts, "; ")
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() string { close(stop); return <-done }
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: want a duration such as 30s or 5m", name, v)
	}
	return d
}

// startProbes starts the streams between a1, b1, x1, the external host and
// NSX Manager; with only, only those that involve the pod named so.
func startProbes(c *Cluster, pr *probes, a1, b1, x1 *corev1.Pod, only ...string) error {
	ea, err := c.podEndpoint(a1)
	if err != nil {
		return err
	}
	eb, err := c.podEndpoint(b1)
	if err != nil {
		return err
	}
	ex, err := c.podEndpoint(x1)
	if err != nil {
		return err
	}
	ext := c.externalEndpoint()
	nsx := endpoint{name: "nsx-manager", ip: NSXManagerIP}
	type spec struct {
		kind     string
		from, to endpoint
		denied   bool
	}
	var specs []spec
	for _, kind := range []string{"icmp", "udp", "tcp"} {
		specs = append(specs, spec{kind, ea, eb, false}, spec{kind, ext, ea, false}, spec{kind, ext, eb, false},
			spec{kind, ea, ext, false}, spec{kind, eb, ext, false})
	}
	specs = append(specs, spec{"connect", ex, eb, true}, spec{"udp", ex, eb, true}, spec{"icmp", ex, eb, true},
		spec{"connect", ea, nsx, true}, spec{"connect", eb, nsx, true})
	for _, s := range specs {
		if len(only) > 0 && s.from.name != only[0] && s.to.name != only[0] {
			continue
		}
		name := fmt.Sprintf("%s %s->%s", s.kind, s.from.name, s.to.name)
		if s.denied {
			name = "denied " + name
		}
		st, err := startStream(name, s.kind, s.denied, s.from, s.to)
		if err != nil {
			return err
		}
		pr.add(st)
	}
	return nil
}

// tcpReaches reports whether pod from can open a TCP connection to addr.
func tcpReaches(ctx context.Context, c *Cluster, from *corev1.Pod, addr string) bool {
	_, err := c.PodExec(ctx, from, "timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1))
	return err == nil
}

// checkVersion checks that every t1route pod runs release r's image.
func checkVersion(ctx context.Context, t *testing.T, c *Cluster, r release) {
	t.Helper()
	list, err := c.Client.CoreV1().Pods(render.DefaultNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			if tagOf(ctr.Image) != tagOf(r.image) {
				t.Errorf("%s/%s runs %s, not release %s (%s)", p.Name, ctr.Name, ctr.Image, r.version, r.image)
			}
		}
	}
}

func tagOf(image string) string { return image[strings.LastIndex(image, ":")+1:] }

// killOVSDaemon kills an Open vSwitch daemon of node's agent pod (SIGKILL,
// as a crash) and waits until one runs again.
func killOVSDaemon(ctx context.Context, t *testing.T, c *Cluster, node, comm string) {
	t.Helper()
	before := ovsPid(ctx, t, c, node, comm)
	if before == 0 || signalInContainer(ctx, t, c, node, "ovs", comm, syscall.SIGKILL) == 0 {
		t.Fatalf("no %s runs in %s's agent pod", comm, node)
	}
	start := time.Now()
	t.Logf("%s on %s killed at %s", comm, node, start.Format("15:04:05.000"))
	if err := waitFor(ctx, 3*time.Minute, comm+" running again", func() (bool, error) {
		pid := ovsPid(ctx, t, c, node, comm)
		return pid != 0 && pid != before, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s on %s running again %.2f s after the kill", comm, node, time.Since(start).Seconds())
	if err := waitAgents(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// ovsAppctl runs ovs-appctl in the ovs container of node's agent pod.
func ovsAppctl(ctx context.Context, c *Cluster, node string, args ...string) (string, error) {
	list, err := c.Client.CoreV1().Pods(render.DefaultNamespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return "", err
	}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, render.AgentName) || p.DeletionTimestamp != nil {
			continue
		}
		pids, err := c.ContainerPids(&p, "ovs")
		if err != nil || len(pids) == 0 {
			continue
		}
		out, err := exec.CommandContext(ctx, "nsenter", append([]string{"-t", fmt.Sprint(pids[0]), "-m", "-p", "--", "ovs-appctl"}, args...)...).CombinedOutput()
		return string(out), err
	}
	return "", fmt.Errorf("no agent pod on %s", node)
}

// checkNodeClean checks a node after its reboot: no OVS port of a pod that
// is gone, no address reserved for one.
func checkNodeClean(ctx context.Context, t *testing.T, c *Cluster, n *Node) {
	t.Helper()
	list, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, p := range list.Items {
		if !p.Spec.HostNetwork && p.Status.PodIP != "" {
			live[p.Status.PodIP] = true
		}
	}
	var stale string
	err = waitFor(ctx, 2*time.Minute, "no stale port or address on "+n.Name, func() (bool, error) {
		agent := agentPodOn(ctx, t, c, n.Name)
		out, err := kubectlOut(ctx, c, "-n", render.DefaultNamespace, "exec", agent.Name, "-c", "ovs", "--",
			"ovs-vsctl", "--columns=name,external_ids", "--format=csv", "--data=bare", "--no-headings", "list", "interface")
		if err != nil {
			stale = err.Error()
			return false, nil
		}
		var bad []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.Contains(line, "t1route-ips=") || strings.Contains(line, "t1route-gateway=true") {
				continue // the bridge and the gateway
			}
			ip := line[strings.Index(line, "t1route-ips=")+len("t1route-ips="):]
			ip, _, _ = strings.Cut(ip, " ")
			ip, _, _ = strings.Cut(ip, ",")
			if !live[ip] {
				bad = append(bad, "port "+line)
			}
		}
		res, err := n.Exec(ctx, "sh", "-c", "ls /var/lib/cni/networks/t1route/ 2>/dev/null")
		if err != nil {
			stale = err.Error()
			return false, nil
		}
		for _, f := range strings.Fields(res) {
			if strings.Count(f, ".") == 3 && !live[f] {
				bad = append(bad, "address "+f)
			}
		}
		sort.Strings(bad)
		stale = strings.Join(bad, "; ")
		return len(bad) == 0, nil
	})
	if err != nil {
		t.Errorf("%v: %s", err, stale)
	}
}

func kubectlOut(ctx context.Context, c *Cluster, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(c.KubeBin(), "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// apiServerOutage stops the API server for d: meanwhile no route leaves the
// Tier-1 (forwarding and policy are the probes'); afterwards the controller
// and the agents are Ready again and a new pod is attached and routed.
func apiServerOutage(ctx context.Context, t *testing.T, c *Cluster, d time.Duration, from *corev1.Pod) {
	t.Helper()
	before := routerRoutes(ctx, c)
	if len(before) < len(c.Nodes) {
		t.Fatalf("routes on the Tier-1 before: %v", before)
	}
	c.StopAPIServer()
	start := time.Now()
	lost := map[string]bool{}
	for time.Since(start) < d {
		now := routerRoutes(ctx, c)
		for cidr, via := range before {
			if now[cidr] != via {
				lost[cidr+" via "+via] = true
			}
		}
		time.Sleep(time.Second)
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if len(lost) > 0 {
		t.Errorf("routes left the Tier-1 while the API server was away: %v", lost)
	}
	if err := waitController(ctx, c); err != nil {
		t.Error(err)
	}
	if err := waitAgents(ctx, c); err != nil {
		t.Error(err)
	}
	t.Logf("controller, agents and nodes Ready %.1f s after the API server came back", time.Since(back).Seconds())
	// Everything reconciles: a pod created now is attached, routed and
	// reachable from outside.
	p, err := runPods(ctx, c, workloadPod(c, c.Nodes[0].Name, "after-api-outage", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Client.CoreV1().Pods("default").Delete(ctx, p[0].Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}) //nolint:errcheck
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "5", "http://"+p[0].Status.PodIP+":8080/").CombinedOutput()
	if err != nil || !echoed(string(out), p[0].Name, ExternalIP) {
		t.Errorf("external host -> a pod created after the outage: %v %q", err, out)
	}
	if routes := routerRoutes(ctx, c); len(routes) < len(before) {
		t.Errorf("routes after the outage: %v (before %v)", routes, before)
	}
}

// fakeNode is a Node object without a kubelet, as a new machine registers
// it (NetworkUnavailable=True until its route exists), at ip on the node
// segment.
func fakeNode(name, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"t1route-test": "fake"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated",
				LastTransitionTime: metav1.Now()}}}}
}

// networkUnavailable returns the node's NetworkUnavailable status ("" if none).
func networkUnavailable(ctx context.Context, c *Cluster, name string) (corev1.ConditionStatus, string) {
	n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", ""
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeNetworkUnavailable {
			return cond.Status, n.Spec.PodCIDR
		}
	}
	return "", n.Spec.PodCIDR
}

// nsxOutageWithChurn makes NSX Manager unreachable for d while a node is
// deleted and two are added: no route of a node that stays is lost, node
// conditions stay right (False where the route exists, True where it does
// not yet), and afterwards the backlog converges: the new nodes' routes
// exist, the deleted node's is gone.
func nsxOutageWithChurn(ctx context.Context, t *testing.T, c *Cluster, d time.Duration) {
	t.Helper()
	nodes := c.Client.CoreV1().Nodes()
	create := func(name, ip string) string {
		if _, err := nodes.Create(ctx, fakeNode(name, ip), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var cidr string
		if err := waitFor(ctx, time.Minute, name+"'s podCIDR", func() (bool, error) {
			_, cidr = networkUnavailable(ctx, c, name)
			return cidr != "", nil
		}); err != nil {
			t.Fatal(err)
		}
		return cidr
	}
	defer func() {
		for _, n := range []string{"churn-1", "churn-2", "churn-3"} {
			nodes.Delete(ctx, n, metav1.DeleteOptions{}) //nolint:errcheck
		}
		c.SetNSXReachable(true) //nolint:errcheck
	}()
	goneCIDR := create("churn-1", "198.51.100.201")
	if err := waitFor(ctx, time.Minute, "churn-1 routed", func() (bool, error) {
		st, _ := networkUnavailable(ctx, c, "churn-1")
		return routerRoutes(ctx, c)[goneCIDR] == "198.51.100.201" && st == corev1.ConditionFalse, nil
	}); err != nil {
		t.Fatal(err)
	}
	stay := routerRoutes(ctx, c)
	delete(stay, goneCIDR)
	if err := c.SetNSXReachable(false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := nodes.Delete(ctx, "churn-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	newCIDRs := map[string]string{"churn-2": create("churn-2", "198.51.100.202"), "churn-3": create("churn-3", "198.51.100.203")}
	problems := map[string]bool{}
	for time.Since(start) < d {
		now := routerRoutes(ctx, c)
		for cidr, via := range stay {
			if now[cidr] != via {
				problems[fmt.Sprintf("route %s via %s lost", cidr, via)] = true
			}
		}
		for _, n := range c.Nodes {
			if st, _ := networkUnavailable(ctx, c, n.Name); st != corev1.ConditionFalse {
				problems[fmt.Sprintf("%s NetworkUnavailable=%s while its route exists", n.Name, st)] = true
			}
		}
		for name := range newCIDRs {
			if st, _ := networkUnavailable(ctx, c, name); st != corev1.ConditionTrue {
				problems[fmt.Sprintf("%s NetworkUnavailable=%s before its route exists", name, st)] = true
			}
		}
		time.Sleep(2 * time.Second)
	}
	if err := c.SetNSXReachable(true); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for p := range problems {
		t.Errorf("during the NSX outage: %s", p)
	}
	if err := waitFor(ctx, 3*time.Minute, "the backlog applied after NSX came back", func() (bool, error) {
		now := routerRoutes(ctx, c)
		if _, ok := now[goneCIDR]; ok {
			return false, nil
		}
		for name, cidr := range newCIDRs {
			st, _ := networkUnavailable(ctx, c, name)
			if now[cidr] == "" || st != corev1.ConditionFalse {
				return false, nil
			}
		}
		for cidr, via := range stay {
			if now[cidr] != via {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Errorf("%v: routes %v", err, routerRoutes(ctx, c))
	} else {
		t.Logf("the backlog (2 routes added, 1 deleted, conditions) converged %.1f s after NSX came back", time.Since(back).Seconds())
	}
	for _, n := range []string{"churn-2", "churn-3"} {
		if err := nodes.Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	if err := waitFor(ctx, 2*time.Minute, "the churned nodes' routes removed", func() (bool, error) {
		now := routerRoutes(ctx, c)
		for _, cidr := range newCIDRs {
			if now[cidr] != "" {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Error(err)
	}
}
