package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// fakeExec plays the API server's pods/exec: each agent pod runs a real
// Server, and `t1route get --raw PATH` answers as the CLI does (the body
// on stdout; exit 1 on an error status).
type fakeExec struct {
	mu      sync.Mutex
	servers map[string]*Server // by pod name
	calls   []string
	refuse  map[string]error // by pod name
}

func (e *fakeExec) Exec(_ context.Context, ns, pod, container string, cmd []string) ([]byte, []byte, error) {
	e.mu.Lock()
	e.calls = append(e.calls, ns+"/"+pod+"/"+container+": "+strings.Join(cmd, " "))
	srv, refuse := e.servers[pod], e.refuse[pod]
	e.mu.Unlock()
	if refuse != nil {
		return nil, nil, refuse
	}
	if len(cmd) != 4 || cmd[0] != DefaultAgentBinary || cmd[1] != "get" || cmd[2] != "--raw" {
		return nil, []byte("unexpected command"), errors.New("command terminated with exit code 2")
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://agent"+cmd[3], nil))
	if rec.Code/100 != 2 {
		return rec.Body.Bytes(), nil, errors.New("command terminated with exit code 1")
	}
	return rec.Body.Bytes(), nil, nil
}

func agentPod(name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: DefaultAgentNamespace,
		Labels: map[string]string{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": "agent"}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

// twoNodes: node-a runs pod-p1 and pod-p2 (the captured dump), node-b runs
// shop/web-0; a third node has no agent.
func twoNodes(t *testing.T) (Source, *fakeExec) {
	a := newFake(t)
	a.pods = []PodInterface{pod1, pod2}
	b := newFake(t)
	b.status.Node = "node-b"
	b.pods = []PodInterface{{Namespace: "shop", Pod: "web-0", Interface: "t1rweb0", OFPort: 2, MAC: "0a:58:64:60:02:02", IPs: []string{"100.96.2.2"}}}
	objs := []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}},
		agentPod("t1route-agent-aaaaa", "node-a"), agentPod("t1route-agent-bbbbb", "node-b"),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-p1", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "node-a"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"}, Spec: corev1.PodSpec{NodeName: "node-b"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: "shop"}, Spec: corev1.PodSpec{NodeName: "node-b"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: "shop"}},
	}
	ex := &fakeExec{servers: map[string]*Server{
		"t1route-agent-aaaaa": NewServer(a, pipelineTables, nil), "t1route-agent-bbbbb": NewServer(b, pipelineTables, nil)},
		refuse: map[string]error{}}
	kube := fake.NewClientset(objs...)
	return Source{Agents: &Agents{Kube: kube, Exec: ex}, Now: func() time.Time { return time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC) }}, ex
}

func TestGetThroughTheAPIServer(t *testing.T) {
	ctx := context.Background()
	src, ex := twoNodes(t)
	var out, errw bytes.Buffer

	// A pod's flows: its node from the Pod object, then that node's agent.
	if err := Get(ctx, src, Query{Kind: KindOVSFlows, Pod: "pod-p1"}, FormatJSON, &out, &errw); err != nil {
		t.Fatal(err)
	}
	var flows []Flow
	if err := json.Unmarshal(out.Bytes(), &flows); err != nil || len(flows) != flowsPerDualStackPod {
		t.Fatalf("%d flows, %v:\n%s", len(flows), err, out.String())
	}
	if len(ex.calls) != 1 || ex.calls[0] != "t1route-system/t1route-agent-aaaaa/agent: /usr/local/bin/t1route get --raw /v1/ovsflows?namespace=default&pod=pod-p1" {
		t.Fatalf("exec calls %q", ex.calls)
	}

	// Every node's pods, as a table.
	out.Reset()
	if err := Get(ctx, src, Query{Kind: KindPodInterface}, FormatTable, &out, &errw); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE") || !strings.HasPrefix(lines[3], "node-b") || !strings.Contains(lines[3], "web-0") {
		t.Fatalf("pods of both nodes:\n%s", out.String())
	}

	errCases := []struct {
		name string
		q    Query
		want string
	}{
		{"a pod the API server does not know", Query{Kind: KindOVSFlows, Pod: "ghost"}, "pod default/ghost not found"},
		{"a pod the agent does not have", Query{Kind: KindPodInterface, Namespace: "shop", Pod: "lost"}, "pod shop/lost not found on node node-b"},
		{"a pod not scheduled", Query{Kind: KindOVSFlows, Namespace: "shop", Pod: "pending"}, "pod shop/pending is not scheduled"},
		{"an unknown node", Query{Kind: KindAgentInfo, Node: "node-z"}, "node node-z not found"},
		{"a node without an agent", Query{Kind: KindAgentInfo, Node: "node-c"}, "node node-c has no running t1route agent pod in namespace t1route-system"},
		{"a table for pods", Query{Kind: KindPodInterface, Table: "20"}, "-T selects flows"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := Get(ctx, src, tc.q, FormatTable, &out, &errw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}

	// One node refusing: the others' answers are printed, the failure named.
	ex.refuse["t1route-agent-bbbbb"] = errors.New(`pods "t1route-agent-bbbbb" is forbidden: User "dev" cannot create resource "pods/exec"`)
	out.Reset()
	errw.Reset()
	err := Get(ctx, src, Query{Kind: KindAgentInfo, Node: ""}, FormatYAML, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 nodes did not answer: node-b") || !strings.Contains(errw.String(), "node node-b") {
		t.Fatalf("error %v, stderr %q", err, errw.String())
	}
	var infos []AgentInfo
	if err := yaml.Unmarshal(out.Bytes(), &infos); err != nil || len(infos) != 1 || infos[0].Node != "node-a" || infos[0].Flows != 35 {
		t.Fatalf("node-a's info: %v %+v", err, infos)
	}
}

func TestGetPrefersTheLocalAgent(t *testing.T) {
	c, _ := startServer(t, newFake(t))
	src, ex := twoNodes(t)
	src.Local = c.T
	var out, errw bytes.Buffer
	if err := Get(context.Background(), src, Query{Kind: KindOVSFlows, Table: "L3Forwarding"}, FormatTable, &out, &errw); err != nil {
		t.Fatal(err)
	}
	if len(ex.calls) != 0 {
		t.Fatalf("went through the API server: %q", ex.calls)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 || !strings.Contains(lines[1], "20:L3Forwarding") {
		t.Fatalf("table 20 as a table:\n%s", out.String())
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); f[0] != "node-a" || f[1] != "20:L3Forwarding" {
			t.Fatalf("row %q", l)
		}
	}
	// --node goes through the API server even beside an agent.
	if err := Get(context.Background(), src, Query{Kind: KindAgentInfo, Node: "node-b"}, FormatJSON, &out, &errw); err != nil || len(ex.calls) != 1 {
		t.Fatalf("--node: %v, calls %q", err, ex.calls)
	}
}

func TestGetWithoutAnyWayToAnAgent(t *testing.T) {
	err := Get(context.Background(), Source{LocalHint: "no agent socket at /var/run/t1route/agent.sock"}, Query{Kind: KindAgentInfo}, FormatTable, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no agent socket at /var/run/t1route/agent.sock") || !strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("error %v", err)
	}
}

func TestPrintAgentInfoTable(t *testing.T) {
	fake := newFake(t)
	info := NewServer(fake, pipelineTables, nil).Info(context.Background())
	var out bytes.Buffer
	if err := PrintAgentInfos(&out, FormatTable, []AgentInfo{info}, fake.status.LastFlowSync.Add(42*time.Second)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"node-a", "Healthy", "br-int", "netdev", "3.1.0", "100.96.1.0/24,2001:db8:96:1::/64", "3", "35", "0:15,10:7,11:4,20:9", "not", "enforced", "42s", "ago"}
	if f := strings.Fields(lines[1]); len(lines) != 2 || strings.Join(f[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("agentinfo table:\n%s", out.String())
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Fatal("-o xml accepted")
	}
	if k, err := ParseKind("netpol"); err != nil || k != KindNetworkPolicy {
		t.Fatalf("netpol: %v %v", k, err)
	}
}
