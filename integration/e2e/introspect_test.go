//go:build integration && e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/pipeline"
)

// introspectSocket is where a node's agent serves the introspection API in
// the e2e (in production, inside the agent's container).
func (w *world) introspectSocket(n *node) string {
	return filepath.Join(w.lab.dir, n.name+"-run", "agent.sock")
}

// get runs `t1route get ARGS` as the CLI runs beside the agent (in the
// agent's pod): inside the node, on the node's socket.
func (w *world) get(n *node, args ...string) (stdout, stderr string, err error) {
	full := append([]string{"netns", "exec", n.ns, w.bin + "/t1route", "get"}, args...)
	full = append(full, "--socket", w.introspectSocket(n))
	cmd := exec.Command("ip", full...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// getAPI runs `t1route get ARGS` from outside every node, through the API
// server with the test's (admin) kubeconfig.
func (w *world) getAPI(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(w.bin+"/t1route", append([]string{"get", "--kubeconfig", w.cluster.Kubeconfig,
		"--socket", filepath.Join(w.lab.dir, "no-agent-here.sock")}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// rawDump is the oracle: ovs-ofctl's own dump of the node's bridge.
func rawDump(t *testing.T, n *node) []string {
	t.Helper()
	out, err := n.ovs.cmd("ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-flows", "unix:"+n.ovs.dir+"/br-int.mgmt")
	if err != nil {
		t.Fatalf("ovs-ofctl dump-flows: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && strings.HasPrefix(l, "cookie=") {
			lines = append(lines, l)
		}
	}
	return lines
}

var dumpTable = regexp.MustCompile(`\btable=(\d+),`)

// perTable counts the oracle's flows by table.
func perTable(lines []string) map[int]int {
	out := map[int]int{}
	for _, l := range lines {
		if m := dumpTable.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			out[id]++
		} else {
			out[0]++ // OpenFlow 1.0 style dumps leave table 0 out
		}
	}
	return out
}

func (w *world) vsctl(t *testing.T, n *node, args ...string) string {
	t.Helper()
	out, err := n.ovs.cmd(append([]string{"ovs-vsctl", "--db=unix:" + n.ovs.dir + "/db.sock"}, args...)...)
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Trim(strings.TrimSpace(out), `"`)
}

// attached is what the CNI plugin attached for a pod, from the runtime's
// cached CNI result and from OVS and the kernel themselves.
type attached struct {
	hostIf, mac, portUUID, ofport string
	ips                           []string
}

func (w *world) attachedOf(t *testing.T, p *pod) attached {
	t.Helper()
	list, err := p.node.cni.conf()
	if err != nil {
		t.Fatal(err)
	}
	cached, err := p.node.cni.cni.GetNetworkListCachedResult(list, rtConf(p.containerID, p.ns, p.name))
	if err != nil || cached == nil {
		t.Fatalf("no cached CNI result for %s: %v", p.name, err)
	}
	res, err := current.NewResultFromResult(cached)
	if err != nil {
		t.Fatal(err)
	}
	var a attached
	for _, i := range res.Interfaces {
		if i.Sandbox == "" {
			a.hostIf = i.Name
		} else {
			a.mac = i.Mac
		}
	}
	for _, c := range res.IPs {
		a.ips = append(a.ips, c.Address.IP.String())
	}
	// The pod's own view of its MAC, and OVS's of the port.
	if out, err := inNetns(p.ns, "cat", "/sys/class/net/eth0/address"); err != nil || strings.TrimSpace(out) != a.mac {
		t.Fatalf("eth0's MAC in the pod is %q (%v); the CNI result says %s", strings.TrimSpace(out), err, a.mac)
	}
	a.ofport = w.vsctl(t, p.node, "get", "Interface", a.hostIf, "ofport")
	a.portUUID = w.vsctl(t, p.node, "get", "Port", a.hostIf, "_uuid")
	return a
}

// carriesOracle selects, from ovs-ofctl's text alone, the flows that name
// the pod: its port in in_port or output, its MAC, or one of its addresses.
func carriesOracle(lines []string, a attached) []string {
	bound := `([,\s]|$)`
	pats := []string{`in_port=` + a.ofport + bound, `output:` + a.ofport + bound, regexp.QuoteMeta(a.mac)}
	for _, ip := range a.ips {
		pats = append(pats, `=`+regexp.QuoteMeta(ip)+bound, `:`+regexp.QuoteMeta(ip)+`->`)
	}
	re := regexp.MustCompile(strings.Join(pats, "|"))
	var out []string
	for _, l := range lines {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// introspection checks `t1route get` against the live datapath; it counts
// its own steps for the `introspection:` line.
func (w *world) introspection(t *testing.T) (pass, fail int) {
	step := func(name string, fn func(t *testing.T)) {
		if t.Run("introspection: "+name, fn) {
			pass++
		} else {
			fail++
		}
	}
	n, a1, a2 := w.nodes[0], w.pods[0], w.pods[1]
	want := w.attachedOf(t, a1)

	step("podinterface shows what the CNI attached (interface, IPs, MAC, port UUID, OpenFlow port, container ID)", func(t *testing.T) {
		out, errOut, err := w.get(n, "podinterface", a1.name, "-n", "default", "-o", "json")
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		var got []introspect.PodInterface
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("-o json: %v, %d items:\n%s", err, len(got), out)
		}
		g := got[0]
		checks := []struct{ what, got, want string }{
			{"node", g.Node, n.name}, {"namespace", g.Namespace, "default"}, {"pod", g.Pod, a1.name},
			{"interface", g.Interface, want.hostIf}, {"container interface", g.ContainerInterface, "eth0"},
			{"IPs", strings.Join(g.IPs, ","), strings.Join(want.ips, ",")}, {"MAC", g.MAC, want.mac},
			{"port UUID", g.PortUUID, want.portUUID}, {"OpenFlow port", strconv.Itoa(g.OFPort), want.ofport},
			{"container ID", g.ContainerID, a1.containerID},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
			}
		}
		table, _, err := w.get(n, "podinterface", "-n", "default")
		if err != nil || !strings.Contains(table, a1.name) || !strings.Contains(table, a2.name) || strings.Count(strings.TrimSpace(table), "\n") != 2 {
			t.Fatalf("the node's pods as a table (%v):\n%s", err, table)
		}
	})

	step("ovsflows -p: exactly the flows that carry the pod, with counters that count its packets", func(t *testing.T) {
		out, errOut, err := w.get(n, "ovsflows", "-p", a1.name, "-n", "default", "-o", "json")
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		var flows []introspect.Flow
		if err := json.Unmarshal([]byte(out), &flows); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		oracle := carriesOracle(rawDump(t, n), want)
		wantN := pipeline.FlowsPerPod
		if w.dual {
			wantN = pipeline.FlowsPerDualStackPod
		}
		if len(flows) != wantN || len(oracle) != wantN {
			t.Fatalf("%d flows shown, %d in ovs-ofctl's dump name the pod; the pipeline makes %d:\n%s\noracle:\n%s",
				len(flows), len(oracle), wantN, out, strings.Join(oracle, "\n"))
		}
		// Its forwarding flow counts the packets sent to it.
		forwardPackets := func() uint64 {
			out, _, err := w.get(n, "ovsflows", "-p", a1.name, "-n", "default", "-T", "L3Forwarding", "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			var fl []introspect.Flow
			json.Unmarshal([]byte(out), &fl) //nolint:errcheck
			for _, f := range fl {
				if strings.Contains(f.Match, "nw_dst="+a1.ip) {
					return f.Packets
				}
			}
			t.Fatalf("no forwarding flow to %s:\n%s", a1.ip, out)
			return 0
		}
		before := forwardPackets()
		if out, err := inNetns(a2.ns, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", a1.ip); err != nil {
			t.Fatalf("ping %s: %v\n%s", a1.ip, err, out)
		}
		// OVS moves datapath statistics to its flows' counters every second or so.
		integration.Eventually(t, 10*time.Second, "the forwarding flow to count 5 pings", func() (bool, string) {
			got := forwardPackets() - before
			return got >= 5, fmt.Sprintf("the forwarding flow to %s counted %d packets for 5 pings", a1.ip, got)
		})
	})

	step("ovsflows -T: by name or number, only that table's flows, all of them", func(t *testing.T) {
		oracle := perTable(rawDump(t, n))
		for _, table := range []string{"L3Forwarding", "20", "l3forwarding"} {
			out, errOut, err := w.get(n, "ovsflows", "-T", table, "-o", "yaml")
			if err != nil {
				t.Fatalf("-T %s: %v: %s", table, err, errOut)
			}
			var flows []introspect.Flow
			if err := yaml.Unmarshal([]byte(out), &flows); err != nil {
				t.Fatalf("-o yaml: %v\n%s", err, out)
			}
			for _, f := range flows {
				if f.Table != 20 || f.TableName != "L3Forwarding" {
					t.Fatalf("-T %s returned a flow of table %d (%s)", table, f.Table, f.TableName)
				}
			}
			if len(flows) != oracle[20] {
				t.Fatalf("-T %s: %d flows, ovs-ofctl has %d in table 20", table, len(flows), oracle[20])
			}
		}
		_, errOut, err := w.get(n, "ovsflows", "-T", "Routing")
		if err == nil || !strings.Contains(errOut, `unknown table "Routing"`) || !strings.Contains(errOut, "20 L3Forwarding") {
			t.Fatalf("an unknown table (err %v):\n%s", err, errOut)
		}
	})

	step("agentinfo: health, bridge, OVS version, podCIDRs, local pods, and flow counts per table equal to ovs-ofctl dump-flows", func(t *testing.T) {
		out, errOut, err := w.get(n, "agentinfo", "-o", "json")
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		var infos []introspect.AgentInfo
		if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		in := infos[0]
		lines := rawDump(t, n)
		oracle := perTable(lines)
		got := map[int]int{}
		for _, tf := range in.FlowsPerTable {
			if tf.Flows > 0 {
				got[tf.Table] = tf.Flows
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(oracle) || in.Flows != len(lines) {
			t.Fatalf("flows per table %v (total %d); ovs-ofctl dump-flows: %v (total %d)", got, in.Flows, oracle, len(lines))
		}
		version, _ := n.ovs.cmd("ovs-vswitchd", "--version")
		cidrs := []string{n.podCIDR}
		if w.dual {
			cidrs = append(cidrs, n.podCIDR6)
		}
		pods := []string{"default/" + a1.name, "default/" + a2.name}
		sort.Strings(pods)
		if in.Node != n.name || in.Health != introspect.Healthy || in.Bridge != "br-int" || in.DatapathType != "netdev" ||
			in.OVSVersion == "" || !strings.Contains(version, in.OVSVersion) || strings.Join(in.PodCIDRs, ",") != strings.Join(cidrs, ",") ||
			strings.Join(in.LocalPods, ",") != strings.Join(pods, ",") || in.LastFlowSync == nil || !in.OVSDBConnected {
			t.Fatalf("agentinfo %+v\n(ovs-vswitchd --version: %s)", in, version)
		}
	})

	step("an unknown pod or table: a clear error naming it and the node", func(t *testing.T) {
		_, errOut, err := w.get(n, "ovsflows", "-p", "ghost", "-n", "default")
		if err == nil || !strings.Contains(errOut, "pod default/ghost not found on node "+n.name) {
			t.Fatalf("ovsflows -p ghost (err %v):\n%s", err, errOut)
		}
		_, errOut, err = w.get(n, "podinterface", a1.name, "-n", "kube-system")
		if err == nil || !strings.Contains(errOut, "pod kube-system/"+a1.name+" not found on node "+n.name) {
			t.Fatalf("podinterface in the wrong namespace (err %v):\n%s", err, errOut)
		}
		_, errOut, err = w.getAPI("agentinfo", "--node", "node-z")
		if err == nil || !strings.Contains(errOut, "node node-z not found") {
			t.Fatalf("agentinfo --node node-z (err %v):\n%s", err, errOut)
		}
	})

	step("networkpolicy: the agent reports enforcement from its installed rules (none in this world)", func(t *testing.T) {
		out, errOut, err := w.get(n, "networkpolicy", "-o", "json")
		var lists []introspect.PolicyList
		if err != nil || json.Unmarshal([]byte(out), &lists) != nil || len(lists) != 1 || lists[0].Node != n.name || !lists[0].Enforced {
			t.Fatalf("(err %v) %s%s", err, out, errOut)
		}
		out, errOut, err = w.get(n, "ovsflows", "--networkpolicy", "deny-all", "-n", "default", "-o", "json")
		var flows []introspect.Flow
		if err != nil || json.Unmarshal([]byte(out), &flows) != nil || len(flows) != 0 {
			t.Fatalf("--networkpolicy of a policy that does not exist: want no flows (err %v):\n%s%s", err, out, errOut)
		}
	})

	step("the summary each agent published: kubectl and `t1route get agentinfo` through the API agree with the datapath", func(t *testing.T) {
		counts := map[string]int{}
		for _, m := range w.nodes {
			counts[m.name] = len(rawDump(t, m))
		}
		integration.Eventually(t, 30*time.Second, "the published summaries", func() (bool, string) {
			out, errOut, err := w.getAPI("agentinfo", "-o", "json")
			var infos []introspect.AgentInfo
			if err != nil || json.Unmarshal([]byte(out), &infos) != nil || len(infos) != len(w.nodes) {
				return false, out + errOut
			}
			for _, in := range infos {
				if in.Health != introspect.Healthy || in.Flows != counts[in.Node] || in.PodCount != 2 || in.Published == nil {
					return false, out
				}
			}
			return true, ""
		})
		out, err := w.cluster.Kubectl(t, "", "get", "t1routeagentinfos")
		if err != nil {
			t.Fatalf("kubectl get t1routeagentinfos: %v\n%s", err, out)
		}
		for _, m := range w.nodes {
			if !regexp.MustCompile(`(?m)^` + m.name + `\s+Healthy\s+2\s+` + strconv.Itoa(counts[m.name]) + `\s`).MatchString(out) {
				t.Fatalf("kubectl get t1routeagentinfos does not show %s Healthy with 2 pods and %d flows:\n%s", m.name, counts[m.name], out)
			}
		}
	})

	step("no introspection listener on the node's network: the agent listens on TCP only on loopback", func(t *testing.T) {
		out, err := inNetns(n.ns, "ss", "-Hltnp")
		if err != nil {
			t.Fatalf("ss: %v\n%s", err, out)
		}
		pid := strconv.Itoa(n.agent.Process.Pid)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.Contains(l, "pid="+pid+",") && !strings.Contains(l, `"t1route"`) {
				continue
			}
			if f := strings.Fields(l); len(f) < 4 || !(strings.HasPrefix(f[3], "127.0.0.1:") || strings.HasPrefix(f[3], "[::1]:")) {
				t.Fatalf("the agent listens beyond loopback: %s", l)
			}
		}
		if fi, err := os.Stat(filepath.Dir(w.introspectSocket(n))); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("the socket's directory: %v %v (want 0700)", fi, err)
		}
	})
	return pass, fail
}
