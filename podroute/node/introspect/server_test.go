package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeDatapath serves the captured dual-stack dump and its two pods.
type fakeDatapath struct {
	dump    string
	dumpErr error
	pods    []PodInterface
	status  AgentStatus
}

func (f *fakeDatapath) Status(context.Context) AgentStatus { return f.status }
func (f *fakeDatapath) PodInterfaces(context.Context) ([]PodInterface, error) {
	return append([]PodInterface(nil), f.pods...), nil
}
func (f *fakeDatapath) DumpFlows(context.Context) (string, error) { return f.dump, f.dumpErr }

var pipelineTables = Tables{{ID: 0, Name: "Classifier"}, {ID: 10, Name: "NeighborResponder"},
	{ID: 11, Name: "NDAdvertisement"}, {ID: 20, Name: "L3Forwarding"}}

func newFake(t *testing.T) *fakeDatapath {
	synced := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	other := PodInterface{Namespace: "shop", Pod: "web-0", Interface: "t1rweb0", OFPort: 9, MAC: "0a:58:64:60:01:09",
		IPs: []string{"100.96.1.9"}, ContainerID: "c9"}
	return &fakeDatapath{dump: readTestdata(t, "dump-dualstack-2pods.txt"), pods: []PodInterface{pod2, other, pod1},
		status: AgentStatus{Node: "node-a", Ready: true, Bridge: "br-int", DatapathType: "netdev", OVSVersion: "3.1.0",
			PodCIDRs: []string{"100.96.1.0/24", "2001:db8:96:1::/64"}, OVSDBConnected: true, LastFlowSync: &synced}}
}

// startServer serves a fake datapath on a real unix socket and returns a
// client that reaches it as the CLI does.
func startServer(t *testing.T, dp Datapath) (Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewServer(dp, pipelineTables, nil).Handler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return Client{T: SocketTransport{Path: path}}, path
}

func TestPodInterfacesOverTheSocket(t *testing.T) {
	c, _ := startServer(t, newFake(t))
	ctx := context.Background()
	all, err := c.PodInterfaces(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range all {
		keys = append(keys, p.Key())
		if p.Node != "node-a" {
			t.Errorf("%s: node %q, want node-a", p.Key(), p.Node)
		}
	}
	if strings.Join(keys, " ") != "default/pod-p1 default/pod-p2 shop/web-0" {
		t.Fatalf("pods %v, want all three sorted", keys)
	}
	one, err := c.PodInterfaces(ctx, "default", "pod-p1")
	if err != nil || len(one) != 1 || one[0].OFPort != 2 || one[0].MAC != pod1.MAC || one[0].IPs[1] != "2001:db8:96:1::2" {
		t.Fatalf("pod-p1: %+v, %v", one, err)
	}
	inShop, err := c.PodInterfaces(ctx, "shop", "")
	if err != nil || len(inShop) != 1 || inShop[0].Pod != "web-0" {
		t.Fatalf("namespace shop: %+v, %v", inShop, err)
	}
	_, err = c.PodInterfaces(ctx, "default", "web-0") // right name, wrong namespace
	if !IsNotFound(err) || !strings.Contains(err.Error(), "pod default/web-0 not found on node node-a") {
		t.Fatalf("want NotFound naming the pod and node, got %v", err)
	}
}

func TestFlowsOverTheSocket(t *testing.T) {
	c, _ := startServer(t, newFake(t))
	ctx := context.Background()
	cases := []struct {
		name    string
		q       FlowQuery
		count   int
		tables  map[int]bool // every flow's table must be one of these
		wantErr string
		reason  string
	}{
		{"all", FlowQuery{}, 35, nil, "", ""},
		{"one table by name", FlowQuery{Table: "l3forwarding"}, 9, map[int]bool{20: true}, "", ""},
		{"one table by number", FlowQuery{Table: "10"}, 7, map[int]bool{10: true}, "", ""},
		{"an empty table", FlowQuery{Table: "5"}, 0, nil, "", ""},
		{"a pod", FlowQuery{Namespace: "default", Pod: "pod-p1"}, flowsPerDualStackPod, nil, "", ""},
		{"a pod in one table", FlowQuery{Namespace: "default", Pod: "pod-p1", Table: "L3Forwarding"}, 2, map[int]bool{20: true}, "", ""},
		{"an unknown table", FlowQuery{Table: "Routing"}, 0, nil, `unknown table "Routing": the pipeline's tables are 0 Classifier, 10 NeighborResponder`, ReasonBadRequest},
		{"an unknown pod", FlowQuery{Namespace: "default", Pod: "ghost"}, 0, nil, "pod default/ghost not found on node node-a", ReasonNotFound},
		{"a policy", FlowQuery{NetworkPolicy: "deny-all", Namespace: "default"}, 0, nil, "enforces no NetworkPolicy", ReasonNotEnforced},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows, err := c.Flows(ctx, tc.q)
			if tc.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tc.reason || !strings.Contains(e.Message, tc.wantErr) {
					t.Fatalf("error %v, want %s containing %q", err, tc.reason, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(flows) != tc.count {
				t.Fatalf("%d flows, want %d", len(flows), tc.count)
			}
			for _, f := range flows {
				if tc.tables != nil && !tc.tables[f.Table] {
					t.Errorf("flow of table %d: %s", f.Table, f)
				}
				if f.Node != "node-a" || f.TableName != pipelineTables.Name(f.Table) {
					t.Errorf("flow without node or table name: %+v", f)
				}
			}
		})
	}
}

func TestAgentInfoOverTheSocket(t *testing.T) {
	fake := newFake(t)
	c, _ := startServer(t, fake)
	ctx := context.Background()
	info, err := c.AgentInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != Healthy || info.Flows != 35 || info.Node != "node-a" || info.OVSVersion != "3.1.0" {
		t.Fatalf("info: %+v", info)
	}
	want := map[int]int{0: 15, 10: 7, 11: 4, 20: 9}
	if len(info.FlowsPerTable) != len(want) {
		t.Fatalf("per table: %+v", info.FlowsPerTable)
	}
	for _, tf := range info.FlowsPerTable {
		if tf.Flows != want[tf.Table] || tf.Name != pipelineTables.Name(tf.Table) {
			t.Errorf("table %d %s: %d flows, want %d", tf.Table, tf.Name, tf.Flows, want[tf.Table])
		}
	}
	if strings.Join(info.LocalPods, " ") != "default/pod-p1 default/pod-p2 shop/web-0" || info.PolicyEnforcement {
		t.Fatalf("pods %v, policies %v", info.LocalPods, info.PolicyEnforcement)
	}

	// OVS down: agentinfo still answers, degraded, saying why.
	fake.dumpErr = errors.New("ovs-ofctl dump-flows br-int: exit status 1: failed to connect to socket")
	info, err = c.AgentInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != Degraded || len(info.Errors) != 1 || !strings.Contains(info.Errors[0], "failed to connect") {
		t.Fatalf("with OVS down: health %s, errors %q", info.Health, info.Errors)
	}
	if _, err := c.Flows(ctx, FlowQuery{}); err == nil || !strings.Contains(err.Error(), "node node-a: dump the flow table") {
		t.Fatalf("flows with OVS down: %v", err)
	}
}

func TestNetworkPoliciesNotEnforced(t *testing.T) {
	c, _ := startServer(t, newFake(t))
	l, err := c.NetworkPolicies(context.Background(), "")
	if err != nil || l.Enforced || l.Node != "node-a" || len(l.Items) != 0 {
		t.Fatalf("%+v, %v", l, err)
	}
	var b bytes.Buffer
	if err := PrintPolicies(&b, FormatTable, []PolicyList{l}); err != nil || !strings.Contains(b.String(), "node-a: this version of t1route enforces no NetworkPolicy") {
		t.Fatalf("printed %q, %v", b.String(), err)
	}
}

func TestUnknownPathNamesTheAPI(t *testing.T) {
	_, path := startServer(t, newFake(t))
	status, body, err := SocketTransport{Path: path}.Raw(context.Background(), "/v1/pods")
	if err != nil || status != 404 || !strings.Contains(string(body), "/v1/podinterfaces") {
		t.Fatalf("%d %s %v", status, body, err)
	}
	var e Error
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		t.Fatalf("error body is not an API error: %s", body)
	}
}

func TestNoAgentOnTheSocket(t *testing.T) {
	_, err := Client{T: SocketTransport{Path: filepath.Join(t.TempDir(), "none.sock")}}.AgentInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no t1route agent answers on") || !strings.Contains(err.Error(), "--node") {
		t.Fatalf("error %v", err)
	}
}

// Only root and the agent's own user are served: the directory keeps
// others out, and the peer check refuses them even if it did not.
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user (make test runs as root)")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: apt-get install -y curl")
	}
	_, path := startServer(t, newFake(t))
	asNobody := func() (string, error) {
		cmd := exec.Command("curl", "-sS", "--max-time", "5", "--unix-socket", path, "http://agent/v1/agentinfo")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	asRoot, err := exec.Command("curl", "-sS", "--max-time", "5", "--unix-socket", path, "http://agent/v1/agentinfo").CombinedOutput()
	if err != nil || !strings.Contains(string(asRoot), `"node": "node-a"`) {
		t.Fatalf("root was not served: %v %s", err, asRoot)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if out, err := asNobody(); err == nil || strings.Contains(out, "node-a") {
		t.Fatalf("another user read the API through a private directory: %v %s", err, out)
	}
	// Open every directory on the way and the socket itself: the peer check must still refuse.
	for dir := filepath.Dir(path); dir != "/" && dir != "/tmp"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	if out, err := asNobody(); err == nil || strings.Contains(out, "node-a") {
		t.Fatalf("another user was served: %v %s", err, out)
	}
}
