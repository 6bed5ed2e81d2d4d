//go:build integration && e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/ovs"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

const tier1 = "t1-routable"

// prerequisites fails (rather than skips) when asked to run and something is
// missing: `make e2e` must never pass by not running.
func prerequisites(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e test needs root (network namespaces, OVS): run it as root, as CI does")
	}
	for _, bin := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ping", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: apt-get install -y openvswitch-switch iproute2 iputils-ping iptables", bin)
		}
	}
}

type node struct {
	name, ns, ip, podCIDR string
	ip6, podCIDR6         string // dual-stack only
	ovs                   nodeOVS
	agent                 *exec.Cmd
	cni                   *cniRuntime
	agentArgs             []string
}

type pod struct {
	name, ns, containerID, ip string
	ip6                       string // dual-stack only
	node                      *node
}

// world is the whole test topology.
type world struct {
	t       testing.TB
	lab     *lab
	bin     string
	cluster *integration.Cluster
	simEnv  []string
	// nsxExtra override simEnv (the tenancy steps' router path and user).
	nsxExtra []string
	router   string
	ext      string
	nodes    []*node
	pods     []*pod
	ctrl     *exec.Cmd
	dual     bool // IPv4 and IPv6 everywhere
	// agentExtra are more flags for every agent.
	agentExtra []string
	pass       int
	fail       int
}

func (w *world) env(extra ...string) []string {
	cidr := "CLUSTER_CIDR=100.96.0.0/11"
	if w.dual {
		cidr += ",fd00:100:96::/48"
	}
	env := append(append([]string{}, w.simEnv...), w.nsxExtra...)
	return append(append(env, "NSXT_POD_ROUTING_ENABLED=true", cidr, "CLUSTER_NAME=e2e"), extra...)
}

// step runs one assertion as a subtest and counts it for the summary.
func (w *world) step(name string, fn func(t *testing.T)) bool {
	ok := w.t.(*testing.T).Run(name, fn)
	if ok {
		w.pass++
	} else {
		w.fail++
	}
	return ok
}

func TestRoutability(t *testing.T) {
	prerequisites(t)
	w := &world{t: t, lab: newLab(t), dual: true}
	introPass, introFail, introRan := 0, 0, false
	tenancyPass, tenancyFail, tenancyRan := 0, 0, false
	defer func() {
		if t.Failed() && w.fail == 0 && introFail == 0 {
			w.fail++ // the setup itself failed
		}
		fmt.Printf("routability: %d passed, %d failed\n", w.pass, w.fail)
		if !introRan {
			introFail++ // never reached
		}
		fmt.Printf("introspection: %d passed, %d failed\n", introPass, introFail)
		if !tenancyRan {
			tenancyFail++ // never reached
		}
		fmt.Printf("tenancy: %d passed, %d failed\n", tenancyPass, tenancyFail)
	}()
	w.bin = integration.BuildBinaries(t)
	w.cluster = integration.StartCluster(t)
	w.cluster.ApplyCRD(t, introspect.CRD())
	w.buildNetwork()
	w.simEnv = integration.StartNSXSim(t, w.bin, append([]string{"--tier1", tier1, "--realize-netns", w.router}, tenancySimArgs()...)...)
	w.startController()
	w.startNodes()
	w.attachPods()

	ctx := context.Background()
	a1, a2, b1, b2 := w.pods[0], w.pods[1], w.pods[2], w.pods[3]
	w.step("routes realized on the Tier-1 router", func(t *testing.T) {
		integration.Eventually(t, 30*time.Second, "the routes realized on the router", func() (bool, string) {
			out, _ := try("ip", "-n", w.router, "route")
			ok := strings.Contains(out, "100.96.1.0/24 via 198.51.100.11") && strings.Contains(out, "100.96.2.0/24 via 198.51.100.12")
			if w.dual {
				out6, _ := try("ip", "-n", w.router, "-6", "route")
				out += out6
				ok = ok && strings.Contains(out6, "fd00:100:96:1::/64 via 2001:db8:51::11") && strings.Contains(out6, "fd00:100:96:2::/64 via 2001:db8:51::12")
			}
			return ok, out
		})
	})
	w.step("t1route check passes for every node", func(t *testing.T) {
		integration.Eventually(t, 20*time.Second, "t1route check to pass", func() (bool, string) {
			out, err := w.check()
			want := len(w.nodes) // one route per node and family
			if w.dual {
				want *= 2
			}
			return err == nil && strings.Count(out, "PASS route") == want, out
		})
	})
	w.step("IPv6: pod to pod across nodes (ping) and external host to pod (HTTP sees its own IPv6 address)", func(t *testing.T) {
		w.ping(t, a1.ns, b1.ip6)
		w.ping(t, a1.ns, a2.ip6) // same node
		out := w.probe(t, w.ext, "http://["+a1.ip6+"]:8080/")
		if !strings.Contains(out, "own address 2001:db8:113::10") {
			t.Fatalf("the pod's echo did not see 2001:db8:113::10:\n%s", out)
		}
		out = w.probe(t, b2.ns, "http://[2001:db8:113::10]:8080/")
		if !strings.Contains(out, "own address "+b2.ip6) {
			t.Fatalf("the external echo did not see %s:\n%s", b2.ip6, out)
		}
	})
	w.step("CNI CHECK confirms an attached pod", func(t *testing.T) {
		if err := a1.node.cni.check(ctx, a1.containerID, a1.ns, a1.name); err != nil {
			t.Fatal(err)
		}
	})
	w.step("pod to pod on the same node: ping", func(t *testing.T) { w.ping(t, a1.ns, a2.ip) })
	w.step("pod to pod across nodes: ping", func(t *testing.T) { w.ping(t, a1.ns, b1.ip) })
	w.step("pod to pod across nodes: HTTP sees the pod's own IP", func(t *testing.T) { w.probe(t, b2.ns, a2.ip) })
	w.step("external host to pod: HTTP sees the external host's address", func(t *testing.T) {
		out := w.probe(t, w.ext, a1.ip)
		if !strings.Contains(out, "own address 203.0.113.10") {
			t.Fatalf("the pod's echo did not see 203.0.113.10:\n%s", out)
		}
	})
	w.step("pod to external host: the external echo sees the pod's IP", func(t *testing.T) {
		out := w.probe(t, b1.ns, "http://203.0.113.10:8080/")
		if !strings.Contains(out, "own address "+b1.ip) {
			t.Fatalf("the external echo did not see %s:\n%s", b1.ip, out)
		}
	})
	w.step("spoof guard: a pod cannot send from an address that is not its own", func(t *testing.T) {
		// Replies to a spoofed source are lost anyway, so count what reaches
		// the target instead: its kernel's received echo requests.
		echos := func() int {
			out, err := inNetns(b1.ns, "cat", "/proc/net/snmp")
			if err != nil {
				t.Fatal(err)
			}
			return icmpInEchos(t, out)
		}
		const spoofed = "100.96.1.200"
		if out, err := inNetns(a1.ns, "ip", "addr", "add", spoofed+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		defer inNetns(a1.ns, "ip", "addr", "del", spoofed+"/24", "dev", "eth0") //nolint:errcheck
		before := echos()
		inNetns(a1.ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", spoofed, b1.ip) //nolint:errcheck
		if got := echos() - before; got != 0 {
			t.Fatalf("%d echo requests from a spoofed source reached %s", got, b1.ip)
		}
		before = echos()
		w.ping(t, a1.ns, b1.ip) // the pod's own address still gets through
		if echos() == before {
			t.Fatal("the control ping was not counted: the counter proves nothing")
		}
		if !w.dual {
			return
		}
		echos6 := func() int {
			out, err := inNetns(b1.ns, "cat", "/proc/net/snmp6")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "Icmp6InEchos" {
					v, _ := strconv.Atoi(f[1])
					return v
				}
			}
			t.Fatalf("no Icmp6InEchos in /proc/net/snmp6:\n%s", out)
			return 0
		}
		const spoofed6 = "fd00:100:96:1::200"
		if out, err := inNetns(a1.ns, "ip", "addr", "add", spoofed6+"/64", "dev", "eth0", "nodad"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		before = echos6()
		inNetns(a1.ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", spoofed6, b1.ip6) //nolint:errcheck
		// Remove it before the control ping: IPv6 source selection may prefer it.
		inNetns(a1.ns, "ip", "addr", "del", spoofed6+"/64", "dev", "eth0") //nolint:errcheck
		if got := echos6() - before; got != 0 {
			t.Fatalf("%d IPv6 echo requests from a spoofed source reached %s", got, b1.ip6)
		}
		before = echos6()
		w.ping(t, a1.ns, b1.ip6)
		if echos6() == before {
			t.Fatal("the IPv6 control ping was not counted")
		}
	})
	w.step("flows per pod are bounded", func(t *testing.T) {
		for _, n := range w.nodes {
			flows, err := ovs.OFCtl{RunDir: n.ovs.dir, Bridge: "br-int"}.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := pipeline.NodeFlows + 2*pipeline.FlowsPerPod
			if w.dual {
				want = pipeline.DualStackNodeFlows + 2*pipeline.FlowsPerDualStackPod
			}
			if got := len(flows); got != want {
				t.Fatalf("%s: %d flows, want %d for 2 pods:\n%s", n.name, got, want, strings.Join(flows, "\n"))
			}
			// The agent's metrics say the same (read inside the node: it serves on the node's loopback).
			m := agentAddr.FindStringSubmatch(w.lab.logFile("agent-" + n.name))
			if m == nil {
				t.Fatal("the agent did not log its metrics address")
			}
			integration.Eventually(t, 10*time.Second, "the agent's metrics", func() (bool, string) {
				out, _ := inNetns(n.ns, "curl", "-s", "http://"+m[1]+"/metrics")
				return strings.Contains(out, "t1route_agent_pods 2") && strings.Contains(out, fmt.Sprintf("t1route_agent_flows %d", len(flows))), out
			})
		}
	})
	introPass, introFail = w.introspection(t)
	introRan = true
	w.step("agent restart rebuilds the same flows without disturbing pods", func(t *testing.T) {
		n := w.nodes[0]
		table := ovs.OFCtl{RunDir: n.ovs.dir, Bridge: "br-int"}
		before, _ := table.Dump(ctx)
		pinger := exec.Command("ip", "netns", "exec", w.ext, "ping", "-n", "-i", "0.1", "-c", "40", a1.ip)
		out := &strings.Builder{}
		pinger.Stdout = out
		pinger.Start()
		stopProc(n.agent)
		w.startAgent(n, "agent-"+n.name+"-restarted")
		pinger.Wait()
		after, _ := table.Dump(ctx)
		if strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Fatalf("flows changed across the restart:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		if !strings.Contains(out.String(), "40 received") {
			t.Fatalf("pings lost during the agent restart:\n%s", lastLines(out.String(), 3))
		}
	})
	w.step("a second agent standing by (a surge upgrade) sets the pods' neighbour entries before it takes over", func(t *testing.T) {
		n := a1.node
		integration.Eventually(t, 10*time.Second, a1.name+"'s permanent neighbour entry on the gateway", func() (bool, string) {
			return gatewayNeighbor(t, a1) == "PERMANENT", ""
		})
		// The serving agent, frozen, stands for an older one that keeps no
		// entries: its socket still answers, so the second stands by.
		if err := n.agent.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer n.agent.Process.Signal(syscall.SIGCONT) //nolint:errcheck
		if out, err := inNetns(n.ns, "ip", "neigh", "del", a1.ip, "dev", "t1r-gw0"); err != nil {
			t.Fatalf("delete %s's entry: %v %s", a1.ip, err, out)
		}
		second := w.lab.start(n.ns, "agent-"+n.name+"-standby", nil, n.agentArgs...)
		defer stopProc(second)
		integration.Eventually(t, 20*time.Second, "the second agent standing by", func() (bool, string) {
			return strings.Contains(w.lab.logFile("agent-"+n.name+"-standby"), "standing by"), lastLines(w.lab.logFile("agent-"+n.name+"-standby"), 10)
		})
		integration.Eventually(t, 10*time.Second, a1.name+"'s entry set again by the agent standing by", func() (bool, string) {
			return gatewayNeighbor(t, a1) == "PERMANENT", lastLines(w.lab.logFile("agent-"+n.name+"-standby"), 10)
		})
	})
	w.step("ovs-vswitchd restarted (flows lost): the agent reinstalls them and pods forward again", func(t *testing.T) {
		n := a1.node
		// The node's entries for its pods on the gateway are permanent, so
		// that the switch's restart (its tap loses carrier, the kernel
		// flushes dynamic entries) costs no neighbour resolution.
		for _, p := range []*pod{a1, a2} {
			integration.Eventually(t, 10*time.Second, p.name+"'s permanent neighbour entry on the gateway", func() (bool, string) {
				return gatewayNeighbor(t, p) == "PERMANENT", ""
			})
		}
		if out, err := n.ovs.stopVSwitchd(); err != nil {
			t.Fatalf("stop ovs-vswitchd: %v %s", err, out)
		}
		if state := gatewayNeighbor(t, a1); state != "PERMANENT" {
			t.Fatalf("with the switch stopped %s's neighbour entry is %q, want PERMANENT", a1.name, state)
		}
		if out, err := n.ovs.startVSwitchd(); err != nil {
			t.Fatalf("start ovs-vswitchd: %v %s", err, out)
		}
		start := time.Now()
		w.probe(t, w.ext, a1.ip)
		t.Logf("external -> pod again %s after ovs-vswitchd restarted", time.Since(start).Round(10*time.Millisecond))
	})
	w.step("ovsdb-server restarted, then ovs-vswitchd: the agent reconnects and restores the flows", func(t *testing.T) {
		n := a1.node
		before, err := n.ovs.ovsdbMonitors()
		if err != nil || before < 2 {
			t.Fatalf("ovsdb-server monitors before the restart: %d, %v (want ovs-vswitchd's and the agent's)", before, err)
		}
		if out, err := n.ovs.restartOVSDB(); err != nil {
			t.Fatalf("restart ovsdb-server: %v %s", err, out)
		}
		// Only the agent installs flows without a CNI call: if its OVSDB
		// connection did not come back, the pods stay cut off. Wait until
		// every client's monitor is back, then take the flows away.
		integration.Eventually(t, 30*time.Second, "ovs-vswitchd and the agent monitoring the new ovsdb-server", func() (bool, string) {
			m, err := n.ovs.ovsdbMonitors()
			return err == nil && m >= before, fmt.Sprintf("%d monitors (%d before the restart), %v", m, before, err)
		})
		if out, err := n.ovs.stopVSwitchd(); err != nil {
			t.Fatalf("stop ovs-vswitchd: %v %s", err, out)
		}
		if out, err := n.ovs.startVSwitchd(); err != nil {
			t.Fatalf("start ovs-vswitchd: %v %s", err, out)
		}
		w.probe(t, w.ext, a1.ip)
	})
	w.step("8 pods attached and detached concurrently: every one forwards, nothing is left", func(t *testing.T) {
		n := b1.node
		table := ovs.OFCtl{RunDir: n.ovs.dir, Bridge: "br-int"}
		before, _ := table.Dump(ctx)
		const count = 8
		type result struct {
			p   *pod
			err error
		}
		results := make(chan result, count)
		var burst []*pod
		for i := range count {
			p := &pod{name: fmt.Sprintf("burst-%d", i), node: n, containerID: fmt.Sprintf("burst%d%s", i, w.lab.prefix)}
			p.ns = w.lab.netns(fmt.Sprintf("-burst%d", i))
			burst = append(burst, p)
		}
		for _, p := range burst {
			go func() {
				res, err := n.cni.add(ctx, p.containerID, p.ns, p.name)
				if err == nil {
					r, _ := current.NewResultFromResult(res)
					for _, c := range r.IPs {
						if c.Address.IP.To4() != nil {
							p.ip = c.Address.IP.String()
						}
					}
				}
				results <- result{p, err}
			}()
		}
		seen := map[string]bool{}
		for range count {
			r := <-results
			if r.err != nil {
				t.Fatalf("concurrent ADD %s: %v", r.p.name, r.err)
			}
			if seen[r.p.ip] {
				t.Fatalf("address %s given twice", r.p.ip)
			}
			seen[r.p.ip] = true
		}
		for _, p := range burst {
			w.ping(t, w.ext, p.ip) // from outside, through the Tier-1 and OVS
		}
		errs := make(chan error, count)
		for _, p := range burst {
			go func() { errs <- n.cni.del(ctx, p.containerID, p.ns, p.name) }()
		}
		for range count {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent DEL: %v", err)
			}
		}
		after, _ := table.Dump(ctx)
		if strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Fatalf("flows differ after the burst came and went:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
	})
	w.step("a NAT on the way is caught: the check fails while a node masquerades its pods", func(t *testing.T) {
		n := b1.node
		rule := []string{"-t", "nat", "POSTROUTING", "-s", n.podCIDR, "-o", w.lab.name("u1"), "-j", "MASQUERADE"}
		nat := func(op string) {
			args := append([]string{"netns", "exec", n.ns, "iptables", rule[0], rule[1], op}, rule[2:]...)
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %s: %v\n%s", op, err, out)
			}
		}
		nat("-A")
		out, err := inNetns(b1.ns, w.bin+"/t1route", "check", "--routes=false", "--probe", "http://203.0.113.10:8080/", "--timeout", "15s")
		nat("-D")
		if err == nil || !strings.Contains(out, "the echo saw "+n.ip+" but this host sent from "+b1.ip) || !strings.Contains(out, "translated (NAT)") {
			t.Fatalf("a masqueraded pod passed the check (err %v):\n%s", err, out)
		}
		w.probe(t, b1.ns, "http://203.0.113.10:8080/") // and passes again without the NAT
	})
	w.step("route deleted in NSX: the pods are unreachable and check fails", func(t *testing.T) {
		// Stop the controller so the outage lasts long enough to observe.
		stopProc(w.ctrl)
		w.deleteRouteInNSX(t, "100.96.2.0/24")
		integration.Eventually(t, 10*time.Second, "the route gone from the router", func() (bool, string) {
			out, _ := try("ip", "-n", w.router, "route")
			return !strings.Contains(out, "100.96.2.0/24"), out
		})
		if out, err := inNetns(w.ext, w.bin+"/t1route", "check", "--routes=false", "--probe", b1.ip, "--timeout", "15s"); err == nil {
			t.Fatalf("probe of %s passed with its route gone:\n%s", b1.ip, out)
		}
		out, err := w.check()
		if err == nil || !strings.Contains(out, "FAIL route node=node-b 100.96.2.0/24") {
			t.Fatalf("t1route check did not fail for node-b:\n%s", out)
		}
	})
	w.step("the controller repairs the route and the pods are reachable again", func(t *testing.T) {
		w.startController()
		integration.Eventually(t, 30*time.Second, "t1route check to pass again", func() (bool, string) {
			out, err := w.check()
			return err == nil, out
		})
		w.probe(t, w.ext, b1.ip)
	})
	tenancyPass, tenancyFail = w.tenancy(t)
	tenancyRan = true
	w.step("CNI DEL detaches the pod, frees its address, and is idempotent", func(t *testing.T) {
		p := w.pods[3]
		reservation := filepath.Join(w.lab.dir, p.node.name+"-ipam", "t1route", p.ip)
		if _, err := os.Stat(reservation); err != nil {
			t.Fatalf("before DEL, no reservation for %s: %v", p.ip, err)
		}
		for i := range 2 {
			if err := p.node.cni.del(ctx, p.containerID, p.ns, p.name); err != nil {
				t.Fatalf("DEL #%d: %v", i+1, err)
			}
		}
		out, err := p.node.ovs.cmd("ovs-vsctl", "--db=unix:"+p.node.ovs.dir+"/db.sock", "list-ports", "br-int")
		if err != nil || strings.Count(out, "t1r") != 2 || !strings.Contains(out, "t1r-gw0") { // gateway + the other pod
			t.Fatalf("ports after DEL (want the gateway and one pod): %v\n%s", err, out)
		}
		if _, err := os.Stat(reservation); !os.IsNotExist(err) {
			t.Fatalf("address %s still reserved: %v", p.ip, err)
		}
		if out, err := inNetns(p.ns, "ip", "link", "show", "eth0"); err == nil {
			t.Fatalf("eth0 still in the pod after DEL:\n%s", out)
		}
		integration.Eventually(t, 10*time.Second, "the detached pod's neighbour entry gone from the gateway", func() (bool, string) {
			out, _ := inNetns(p.node.ns, "ip", "neigh", "show", p.ip, "dev", "t1r-gw0")
			return !strings.Contains(out, "PERMANENT"), out
		})
	})
	w.step("teardown leaves no namespace, link or process", func(t *testing.T) {
		w.lab.teardown()
		if left := w.lab.leftovers(); len(left) > 0 {
			t.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	if t.Failed() {
		for _, n := range w.nodes {
			t.Logf("agent %s:\n%s", n.name, lastLines(w.lab.logFile("agent-"+n.name), 30))
		}
		t.Logf("controller:\n%s", lastLines(w.lab.logFile("controller"), 30))
	}
}

// buildNetwork makes the router (a Linux bridge for the node segment and a
// link to the external host), the external host, and the node namespaces.
func (w *world) buildNetwork() {
	l := w.lab
	w.router = l.netns("-t1")
	w.ext = l.netns("-ext")
	l.run("ip", "-n", w.router, "link", "add", "rbr", "type", "bridge")
	l.run("ip", "-n", w.router, "addr", "add", "198.51.100.1/24", "dev", "rbr")
	l.run("ip", "-n", w.router, "link", "set", "rbr", "up")
	l.run("ip", "netns", "exec", w.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.link(w.router, "rext", "203.0.113.1/24", w.ext, l.name("x"), "203.0.113.10/24")
	l.run("ip", "-n", w.ext, "route", "add", "default", "via", "203.0.113.1")
	if w.dual { // documentation prefixes; no duplicate address detection in a lab
		l.run("ip", "netns", "exec", w.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
		l.run("ip", "-n", w.router, "addr", "add", "2001:db8:51::1/64", "dev", "rbr", "nodad")
		l.run("ip", "-n", w.router, "addr", "add", "2001:db8:113::1/64", "dev", "rext", "nodad")
		l.run("ip", "-n", w.ext, "addr", "add", "2001:db8:113::10/64", "dev", l.name("x"), "nodad")
		l.run("ip", "-n", w.ext, "-6", "route", "add", "default", "via", "2001:db8:113::1")
	}
	for i, name := range []string{"node-a", "node-b"} {
		n := &node{name: name, ns: l.netns("-" + name), ip: fmt.Sprintf("198.51.100.%d", 11+i), podCIDR: fmt.Sprintf("100.96.%d.0/24", 1+i)}
		up := l.name(fmt.Sprintf("u%d", i))
		l.link(w.router, fmt.Sprintf("rn%d", i), "", n.ns, up, n.ip+"/24")
		l.run("ip", "-n", w.router, "link", "set", fmt.Sprintf("rn%d", i), "master", "rbr")
		l.run("ip", "-n", n.ns, "route", "add", "default", "via", "198.51.100.1")
		if w.dual {
			n.ip6, n.podCIDR6 = fmt.Sprintf("2001:db8:51::%d", 11+i), fmt.Sprintf("fd00:100:96:%d::/64", 1+i)
			l.run("ip", "-n", n.ns, "addr", "add", n.ip6+"/64", "dev", up, "nodad")
			l.run("ip", "-n", n.ns, "-6", "route", "add", "default", "via", "2001:db8:51::1")
		}
		w.nodes = append(w.nodes, n)
	}
	// The external host's echo, for pod -> external.
	l.start(w.ext, "echo-ext", nil, w.bin+"/t1route", "echo", "--listen", "203.0.113.10:8080")
	if w.dual {
		l.start(w.ext, "echo-ext6", nil, w.bin+"/t1route", "echo", "--listen", "[2001:db8:113::10]:8080")
	}
}

func (w *world) startController() {
	w.ctrl = w.lab.start("", "controller", w.env(), w.bin+"/t1route", "controller", "--kubeconfig", w.cluster.Kubeconfig,
		"--metrics-bind-address", "127.0.0.1:0", "--leader-elect=false", "--resync-period", "2s", "--log-format", "console")
}

func (w *world) startNodes() {
	ctx := context.Background()
	for _, n := range w.nodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.name},
			Spec:       corev1.NodeSpec{PodCIDR: n.podCIDR, PodCIDRs: []string{n.podCIDR}},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.ip}}},
		}
		if w.dual {
			node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, n.podCIDR6)
			node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.ip6})
		}
		_, err := w.cluster.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		n.ovs = w.lab.startOVS(n.ns)
		w.lab.forwardIntoNetns(n.ns, apiserverAddr(w.t, w.cluster))
		dir := filepath.Join(w.lab.dir, n.name)
		n.agentArgs = []string{w.bin + "/t1route", "agent", "--kubeconfig", w.cluster.Kubeconfig, "--node-name", n.name,
			"--ovs-run-dir", n.ovs.dir, "--datapath-type", "netdev", "--cni-plugin", w.bin + "/t1route-cni",
			"--cni-bin-dir", dir + "/bin", "--cni-conf-dir", dir + "/net.d", "--ipam-data-dir", filepath.Join(w.lab.dir, n.name+"-ipam"),
			"--health-bind-address", "127.0.0.1:0", "--log-format", "console", "--flow-resync", "5s",
			"--introspect-socket", w.introspectSocket(n), "--summary-min-interval", "1s"}
		n.agentArgs = append(n.agentArgs, w.agentExtra...)
		w.startAgent(n, "agent-"+n.name)
		n.cni = newCNIRuntime(n.ns, dir+"/bin", dir+"/net.d", dir+"/cni-cache")
	}
}

func (w *world) startAgent(n *node, logName string) {
	n.agent = w.lab.start(n.ns, logName, nil, n.agentArgs...)
	integration.Eventually(w.t, 45*time.Second, "the agent's datapath ready", func() (bool, string) {
		return strings.Contains(w.lab.logFile(logName), "datapath ready"), lastLines(w.lab.logFile(logName), 10)
	})
}

// attachPods makes two pods per node through CNI ADD and runs an echo in each.
func (w *world) attachPods() {
	ctx := context.Background()
	for _, n := range w.nodes {
		for j := range 2 {
			p := &pod{name: fmt.Sprintf("%s-pod%d", n.name, j), node: n, containerID: fmt.Sprintf("c%s%d%s", n.name, j, w.lab.prefix)}
			p.ns = w.lab.netns(fmt.Sprintf("-%s-p%d", n.name, j))
			res, err := n.cni.add(ctx, p.containerID, p.ns, p.name)
			if err != nil {
				w.t.Fatalf("CNI ADD %s: %v\nagent log:\n%s", p.name, err, lastLines(w.lab.logFile("agent-"+n.name), 20))
			}
			r, err := current.NewResultFromResult(res)
			want := 1
			if w.dual {
				want = 2
			}
			if err != nil || len(r.IPs) != want {
				w.t.Fatalf("ADD result %v: %v (want %d addresses)", res, err, want)
			}
			for _, c := range r.IPs {
				if c.Address.IP.To4() != nil {
					p.ip = c.Address.IP.String()
				} else {
					p.ip6 = c.Address.IP.String()
				}
			}
			w.lab.start(p.ns, "echo-"+p.name, nil, w.bin+"/t1route", "echo", "--listen", ":8080") // both families
			w.pods = append(w.pods, p)
		}
	}
}

func (w *world) check() (string, error) {
	cmd := exec.Command(w.bin+"/t1route", "check", "--kubeconfig", w.cluster.Kubeconfig, "--timeout", "20s")
	cmd.Env = append(os.Environ(), w.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (w *world) ping(t *testing.T, fromNS, ip string) {
	integration.Eventually(t, 10*time.Second, "ping "+ip, func() (bool, string) {
		out, err := inNetns(fromNS, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", ip)
		if strings.Contains(out, "DUP!") {
			t.Fatalf("duplicate replies: a packet took two paths:\n%s", out)
		}
		return err == nil, out
	})
}

// probe runs `t1route check --probe` from a namespace: ping, HTTP, and the
// echo's view of the source address must be the caller's own.
func (w *world) probe(t *testing.T, fromNS, target string) string {
	var out string
	integration.Eventually(t, 15*time.Second, "the probe of "+target, func() (bool, string) {
		var err error
		out, err = inNetns(fromNS, w.bin+"/t1route", "check", "--routes=false", "--probe", target, "--timeout", "10s")
		return err == nil, out
	})
	return out
}

func (w *world) deleteRouteInNSX(t *testing.T, cidr string) {
	ns, err := w.cluster.Client.CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var host, caB64 string
	for _, kv := range w.simEnv {
		if v, ok := strings.CutPrefix(kv, "NSXT_MANAGER_HOST="); ok {
			host = v
		}
		if v, ok := strings.CutPrefix(kv, "NSXT_ROOT_CA_DATA_B64="); ok {
			caB64 = v
		}
	}
	pem, _ := base64.StdEncoding.DecodeString(caB64)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	id := "t1route-" + string(ns.UID) + "-" + strings.ReplaceAll(cidr, "/", "_")
	req, _ := http.NewRequest(http.MethodDelete, "https://"+host+"/nsxsim/api/tier-1s/"+tier1+"/routes/"+id, nil)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete route %s in nsxsim: HTTP %d", id, resp.StatusCode)
	}
}

// icmpInEchos reads InEchos from /proc/net/snmp.
func icmpInEchos(t *testing.T, snmp string) int {
	lines := strings.Split(snmp, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "Icmp:") && strings.HasPrefix(lines[i+1], "Icmp:") {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j, n := range names {
				if n == "InEchos" && j < len(values) {
					v, _ := strconv.Atoi(values[j])
					return v
				}
			}
		}
	}
	t.Fatalf("no Icmp InEchos in /proc/net/snmp:\n%s", snmp)
	return 0
}

var agentAddr = regexp.MustCompile(`serving metrics and health\s+\{"address": "([0-9.:]+)"\}`)

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// apiserverAddr is the kube-apiserver's host:port on loopback.
func apiserverAddr(t testing.TB, c *integration.Cluster) string {
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// gatewayNeighbor is the state of the node's neighbour entry for p on the
// gateway ("" if none), failing the test if the entry names another MAC
// than the pod's.
func gatewayNeighbor(t *testing.T, p *pod) string {
	t.Helper()
	out, _ := inNetns(p.node.ns, "ip", "neigh", "show", p.ip, "dev", "t1r-gw0")
	f := strings.Fields(out) // ADDRESS [lladdr MAC] STATE...
	if len(f) < 2 {
		return ""
	}
	link, err := inNetns(p.ns, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		t.Fatalf("%s's MAC: %v %s", p.name, err, link)
	}
	if len(f) >= 4 && f[1] == "lladdr" && f[2] != strings.TrimSpace(link) {
		t.Fatalf("the gateway's entry for %s names %s, the pod's MAC is %s", p.name, f[2], strings.TrimSpace(link))
	}
	return f[len(f)-1]
}
