package enforcer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

func pod(ns, name, node, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
}

type env struct {
	kube *fake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	e    *Enforcer
	file string
	logs *observer.ObservedLogs
}

func start(t *testing.T, crd *atomic.Bool, objs ...runtime.Object) *env {
	kube := fake.NewClientset(objs...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{cnp.Resource: "ClusterNetworkPolicyList"})
	core, logs := observer.New(zap.InfoLevel)
	file := filepath.Join(t.TempDir(), "policy.json")
	e := New(Config{NodeName: "n1", RulesFile: file, Window: time.Millisecond, CRDPoll: 50 * time.Millisecond, LogDenied: true, LogInterval: time.Nanosecond},
		kube, dyn, zap.New(core), nil)
	if crd != nil {
		e.served = crd.Load
	} else {
		// The real lookup, against the fake's discovery.
		kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{GroupVersion: cnp.GroupVersion.String(),
			APIResources: []metav1.APIResource{{Name: "clusternetworkpolicies", Kind: cnp.Kind}}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &env{kube: kube, dyn: dyn, e: e, file: file, logs: logs}
}

// waitRules waits until the published rules (and the file) satisfy cond.
func (v *env) waitRules(t *testing.T, what string, cond func(rs *rules.Set) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if rs := v.e.Rules(); rs != nil && cond(rs) {
			fromFile, err := rules.ReadFile(v.file)
			if err != nil || fromFile == nil || !cond(fromFile) {
				t.Fatalf("%s: published but the file disagrees: %v", what, err)
			}
			return
		}
		select {
		case <-v.e.Changes():
		case <-time.After(100 * time.Millisecond): // Rules may have changed before we listened
		case <-deadline:
			t.Fatalf("%s: not within 10 s; rules: %+v", what, v.e.Rules())
		}
	}
}

func hasRuleOf(rs *rules.Set, kind, name string) bool {
	for _, r := range rs.Rules {
		if r.Policy.Kind == kind && r.Policy.Name == name {
			return true
		}
	}
	return false
}

func TestEnforcerFollowsTheAPI(t *testing.T) {
	ctx := context.Background()
	v := start(t, nil, namespace("x"), namespace("y"),
		pod("x", "a", "n1", "100.96.1.2", map[string]string{"app": "web"}),
		pod("x", "b", "n1", "100.96.1.3", map[string]string{"app": "db"}),
		pod("y", "a", "n2", "100.96.2.2", map[string]string{"app": "web"}),
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "deny"}, Spec: networkingv1.NetworkPolicySpec{}})
	v.waitRules(t, "default deny isolates both local pods", func(rs *rules.Set) bool { return len(rs.Isolated[rules.Ingress]) == 2 })
	if !v.e.Ready() {
		t.Fatal("rules published but not ready")
	}

	// A NetworkPolicy allowing from y/a: the peer is y/a's address.
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "from-web"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{},
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}}}}
	if _, err := v.kube.NetworkingV1().NetworkPolicies("x").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	peersOf := func(rs *rules.Set) string {
		for _, r := range rs.Rules {
			if r.Policy.Name == "from-web" {
				return strings.Trim(strings.ReplaceAll(strings.Join(func() []string {
					var s []string
					for _, p := range r.Peers {
						s = append(s, p.String())
					}
					return s
				}(), ","), "/32", ""), " ")
			}
		}
		return ""
	}
	v.waitRules(t, "the new policy's rule", func(rs *rules.Set) bool { return peersOf(rs) == "100.96.1.2,100.96.2.2" })

	// A label change moves a pod out of the peers.
	ya, _ := v.kube.CoreV1().Pods("y").Get(ctx, "a", metav1.GetOptions{})
	ya.Labels = map[string]string{"app": "batch"}
	if _, err := v.kube.CoreV1().Pods("y").Update(ctx, ya, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	v.waitRules(t, "y/a left the peers", func(rs *rules.Set) bool { return peersOf(rs) == "100.96.1.2" })

	// A finished pod leaves the view.
	xb, _ := v.kube.CoreV1().Pods("x").Get(ctx, "b", metav1.GetOptions{})
	xb.Status.Phase = corev1.PodSucceeded
	if _, err := v.kube.CoreV1().Pods("x").UpdateStatus(ctx, xb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	v.waitRules(t, "x/b finished", func(rs *rules.Set) bool { return len(rs.Isolated[rules.Ingress]) == 1 })

	// A ClusterNetworkPolicy through the dynamic client.
	u, err := cnp.ToUnstructured(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-mgmt"}, Spec: cnp.Spec{Tier: cnp.AdminTier,
		Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
		Egress:  []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: []string{"203.0.113.0/28"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.dyn.Resource(cnp.Resource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v.waitRules(t, "the ClusterNetworkPolicy's rule", func(rs *rules.Set) bool { return hasRuleOf(rs, rules.KindClusterNetworkPolicy, "no-mgmt") })
	if err := v.dyn.Resource(cnp.Resource).Delete(ctx, "no-mgmt", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	v.waitRules(t, "the ClusterNetworkPolicy deleted", func(rs *rules.Set) bool { return !hasRuleOf(rs, rules.KindClusterNetworkPolicy, "no-mgmt") })

	// Namespace deleted: a namespace selector no longer matches it.
	if err := v.kube.NetworkingV1().NetworkPolicies("x").Delete(ctx, "deny", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	v.waitRules(t, "deny deleted", func(rs *rules.Set) bool { return len(rs.Isolated[rules.Ingress]) == 0 })
}

// Without the CRD, NetworkPolicy is enforced at once and
// ClusterNetworkPolicies from when the CRD appears.
func TestEnforcerWaitsForTheCRD(t *testing.T) {
	var crd atomic.Bool
	v := start(t, &crd, namespace("x"), pod("x", "a", "n1", "100.96.1.2", nil))
	v.waitRules(t, "ready without the CRD", func(rs *rules.Set) bool { return true })
	if v.logs.FilterMessageSnippet("CRD is not installed").Len() != 1 {
		t.Fatal("the missing CRD was not reported")
	}
	u, _ := cnp.ToUnstructured(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: cnp.Spec{Tier: cnp.BaselineTier,
		Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}}, Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: &metav1.LabelSelector{}}}}}}})
	if _, err := v.dyn.Resource(cnp.Resource).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crd.Store(true)
	v.waitRules(t, "the CNP once the CRD is served", func(rs *rules.Set) bool { return hasRuleOf(rs, rules.KindClusterNetworkPolicy, "late") })
}

func TestDeniedPacketMetrics(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := New(Config{NodeName: "n1", LogDenied: true, LogInterval: time.Nanosecond}, fake.NewClientset(), nil, zap.New(core), nil)
	np := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: "x", Name: "deny"}
	admin := rules.PolicyRef{Kind: rules.KindClusterNetworkPolicy, Name: "guard"}
	counters := map[uint64]pipeline.Counter{
		pipeline.CookieTag | 1: {Policy: np, Direction: rules.Ingress, Action: rules.Deny, Isolation: true},
		pipeline.CookieTag | 2: {Policy: admin, Direction: rules.Egress, Action: rules.Deny},
		pipeline.CookieTag | 3: {Policy: admin, Direction: rules.Egress, Action: rules.Accept},
	}
	denied := func(ref rules.PolicyRef, d string) float64 {
		return testutil.ToFloat64(e.metrics.Denied.WithLabelValues(ref.Kind, ref.Namespace, ref.Name, d))
	}
	e.ObserveFlowStats(counters, map[uint64]uint64{pipeline.CookieTag | 1: 100, pipeline.CookieTag | 2: 5, pipeline.CookieTag | 3: 9})
	if denied(np, "ingress") != 0 || denied(admin, "egress") != 0 {
		t.Fatal("counts found at start (they predate this agent) were counted")
	}
	e.ObserveFlowStats(counters, map[uint64]uint64{pipeline.CookieTag | 1: 103, pipeline.CookieTag | 2: 5, pipeline.CookieTag | 3: 50})
	e.ObserveFlowStats(counters, map[uint64]uint64{pipeline.CookieTag | 1: 2, pipeline.CookieTag | 2: 7}) // flow 1 replaced
	if got := denied(np, "ingress"); got != 5 {
		t.Errorf("NetworkPolicy ingress denied %v, want 5", got)
	}
	if got := denied(admin, "egress"); got != 2 {
		t.Errorf("admin egress denied %v, want 2 (accepted packets are not denials)", got)
	}
	if logs.FilterMessage("denied by policy").FilterField(zap.String("policy", "NetworkPolicy x/deny")).Len() == 0 {
		t.Errorf("no log line naming the policy: %v", logs.All())
	}
}

// Ready means the flow sync can read the rules: while the rules file cannot
// be written the enforcer is not ready, and it retries until it can.
func TestEnforcerNotReadyUntilTheRulesAreWritten(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "run")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	kube := fake.NewClientset(namespace("x"), pod("x", "a", "n1", "100.96.1.2", nil))
	core, logs := observer.New(zap.InfoLevel)
	file := filepath.Join(blocker, "policy.json")
	e := New(Config{NodeName: "n1", RulesFile: file, Window: time.Millisecond}, kube, nil, zap.New(core), nil)
	e.served = func() bool { return false }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessageSnippet("cannot write the policy rules").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the failed write was not logged: %v", logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e.Ready() || e.Rules() != nil {
		t.Fatal("ready although the flow sync has no rules to read")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	for !e.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready within 10 s after the rules file became writable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rs, err := rules.ReadFile(file); err != nil || rs == nil {
		t.Fatalf("ready but the rules file is not there: %v", err)
	}
}

// With the default 30 s between looks, a CRD established just after the
// agent started (an install: both in one apply) is still found within
// seconds: the looks start 1 s apart.
func TestEnforcerFindsAJustInstalledCRDSoon(t *testing.T) {
	var crd atomic.Bool
	kube := fake.NewClientset(namespace("x"), pod("x", "a", "n1", "100.96.1.2", nil))
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{cnp.Resource: "ClusterNetworkPolicyList"})
	e := New(Config{NodeName: "n1", Window: time.Millisecond}, kube, dyn, zap.NewNop(), nil)
	e.served = crd.Load
	u, _ := cnp.ToUnstructured(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "guard"}, Spec: cnp.Spec{Tier: cnp.AdminTier,
		Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}}, Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: []string{"203.0.113.0/28"}}}}}}})
	if _, err := dyn.Resource(cnp.Resource).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !e.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	crd.Store(true)
	start := time.Now()
	for deadline := start.Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rs := e.Rules(); rs != nil && hasRuleOf(rs, rules.KindClusterNetworkPolicy, "guard") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ClusterNetworkPolicy not enforced within 10 s of its CRD being served (the default poll is 30 s)")
		}
	}
	t.Logf("enforced %v after the CRD was served", time.Since(start).Round(time.Millisecond))
}

// A rules file gone or damaged is written again on request, though the
// rules did not change (the agent asks when its flow sync cannot read it).
func TestRepublishRewritesTheRulesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.json")
	e := New(Config{NodeName: "n1", RulesFile: file, Window: time.Millisecond}, fake.NewSimpleClientset(), nil, zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx) //nolint:errcheck
	for deadline := time.Now().Add(10 * time.Second); !e.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
	}
	if err := os.WriteFile(file, []byte("{damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Republish()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rs, err := rules.ReadFile(file); err == nil && rs != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the rules file was not written again")
		}
	}
}
