//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/podroute/node/introspect"
)

// The agent's summary on a real API server: the CRD installs, the object is
// created and updated by server-side apply, owned by its Node, shown by
// kubectl with its columns, read back by `t1route get agentinfo`'s reader;
// and a burst of changes is written at the bounded rate, measured from a
// watch on the object.
func TestAgentInfoPublication(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	c.ApplyCRD(t, introspect.CRD())
	node, err := c.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dyn.Resource(introspect.AgentInfoResource).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var writes atomic.Int64
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				writes.Add(1)
			}
		}
	}()

	var pods atomic.Int64
	synced := time.Now().UTC().Truncate(time.Second)
	collect := func(context.Context) introspect.Summary {
		n := int(pods.Load())
		return introspect.SummaryOf(introspect.AgentInfo{
			AgentStatus: introspect.AgentStatus{Node: "node-a", Ready: true, Bridge: "br-int", DatapathType: "netdev", OVSVersion: "3.1.0",
				PodCIDRs: []string{"100.96.1.0/24"}, OVSDBConnected: true, LastFlowSync: &synced, LastFlowSyncDuration: 0.012},
			Health: introspect.Healthy, Flows: 8 + 4*n, PodCount: n,
			FlowsPerTable: []introspect.TableFlows{{Table: 0, Name: "Classifier", Flows: 3 + 2*n}, {Table: 20, Name: "L3Forwarding", Flows: 5 + 2*n}},
		})
	}
	const minInterval = time.Second
	p := (&introspect.Publisher{Node: "node-a", Store: &introspect.KubeStore{Dynamic: dyn, Kube: c.Client}, Collect: collect,
		MinInterval: minInterval, Heartbeat: time.Hour}).Init()
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(pctx); close(done) }()
	defer func() { stop(); <-done }()
	Eventually(t, 10*time.Second, "the first write", func() (bool, string) { return writes.Load() == 1, fmt.Sprint(writes.Load(), " writes") })

	// The object: owned by the node, with the summary, in kubectl's columns.
	u, err := dyn.Resource(introspect.AgentInfoResource).Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := u.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != node.UID || refs[0].Kind != "Node" {
		t.Fatalf("owner references %+v, want the Node", refs)
	}
	out, err := c.Kubectl(t, "", "get", "t1routeagentinfos")
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	for _, col := range []string{"HEALTH", "PODS", "FLOWS", "OVS", "LAST-SYNC", "UPDATED"} {
		if !strings.Contains(out, col) {
			t.Fatalf("kubectl get t1routeagentinfos lacks column %s:\n%s", col, out)
		}
	}
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(f) < 5 || f[0] != "node-a" || f[1] != "Healthy" || f[2] != "0" || f[3] != "8" || f[4] != "3.1.0" {
		t.Fatalf("kubectl get t1routeagentinfos row: %q", f)
	}

	// A burst: a pod event every 10 ms for 5 s.
	start := time.Now()
	before := writes.Load()
	for i := 1; time.Since(start) < 5*time.Second; i++ {
		pods.Store(int64(i))
		p.Notify()
		time.Sleep(10 * time.Millisecond) // the burst's pace, not synchronisation
	}
	changes := pods.Load()
	Eventually(t, 2*minInterval+5*time.Second, "the last state published", func() (bool, string) {
		infos, err := introspect.PublishedInfos(ctx, dyn, "node-a", time.Now())
		return err == nil && infos[0].PodCount == int(changes), fmt.Sprint(infos, err)
	})
	elapsed := time.Since(start)
	burst := writes.Load() - before
	limit := int64(elapsed/minInterval) + 1
	fmt.Printf("agentinfo publication: %d changes in %.1f s -> %d writes (%.2f/s; min interval %v)\n",
		changes, elapsed.Seconds(), burst, float64(burst)/elapsed.Seconds(), minInterval)
	if burst > limit || burst < 3 {
		t.Fatalf("%d writes for %d changes in %v, want between 3 and %d", burst, changes, elapsed, limit)
	}

	infos, err := introspect.PublishedInfos(ctx, dyn, "", time.Now())
	if err != nil || len(infos) != 1 || infos[0].Node != "node-a" || infos[0].Health != introspect.Healthy || infos[0].Flows != 8+4*int(changes) ||
		len(infos[0].FlowsPerTable) != 2 || infos[0].Published == nil {
		t.Fatalf("published infos %+v, %v", infos, err)
	}
	_, err = introspect.PublishedInfos(ctx, dyn, "node-z", time.Now())
	if !introspect.IsNotFound(err) || !strings.Contains(err.Error(), "node node-z has published no datapath summary") {
		t.Fatalf("unknown node: %v", err)
	}
}

// The agent's ServiceAccount, with only AgentRules and a token bound to its
// pod (as the kubelet gives it), publishes its own node's summary and is
// refused another node's by the admission policy; with only ViewRules, a
// reader reads them and writes none.
func TestAgentInfoAccess(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	c.ApplyCRD(t, introspect.CRD())
	const ns, sa = "t1route-system", "t1route-agent"
	user := "system:serviceaccount:" + ns + ":" + sa
	policy, binding := introspect.AdmissionPolicy("t1route-agent-own-node", user)
	rbac := c.Client.RbacV1()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}))
	must(c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}))
	must(c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}))
	agentRules := append(introspect.AgentRules(), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}})
	must(rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: agentRules}, metav1.CreateOptions{}))
	must(rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}, metav1.CreateOptions{}))
	must(rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}, Rules: introspect.ViewRules()}, metav1.CreateOptions{}))
	must(rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "viewer"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "viewer"}}}, metav1.CreateOptions{}))
	for _, n := range []string{"node-a", "node-b"} {
		must(c.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}))
	}
	// The agent's pod on node-a (no kubelet runs it: the token is what matters).
	pod, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "t1route-agent-a"},
		Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: sa, Containers: []corev1.Container{{Name: "agent", Image: "t1route"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asAgent := rest.AnonymousClientConfig(c.Config)
	asAgent.BearerToken = tok.Status.Token
	agentDyn := dynamic.NewForConfigOrDie(asAgent)
	store := &introspect.KubeStore{Dynamic: agentDyn, Kube: kubernetes.NewForConfigOrDie(asAgent)}
	sum := introspect.Summary{Health: introspect.Healthy, Flows: 8, Updated: time.Now().UTC().Truncate(time.Second), Heartbeat: 300}

	// The policy takes a moment to be loaded: wait, with dry runs, until it refuses node-b.
	Eventually(t, 20*time.Second, "the admission policy to be in force", func() (bool, string) {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "t1route.io/v1alpha1", "kind": "T1RouteAgentInfo",
			"metadata": map[string]any{"name": "node-b"}}}
		_, err := agentDyn.Resource(introspect.AgentInfoResource).Apply(ctx, "node-b", u,
			metav1.ApplyOptions{FieldManager: introspect.FieldManager, DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "T1RouteAgentInfo"), fmt.Sprint(err)
	})
	err = store.Publish(ctx, "node-b", sum)
	if err == nil || !strings.Contains(err.Error(), "may write only its own node's T1RouteAgentInfo, not node-b (its token names node node-a)") {
		t.Fatalf("the agent of node-a wrote node-b's summary: %v", err)
	}
	if err := store.Publish(ctx, "node-a", sum); err != nil {
		t.Fatalf("the agent could not publish its own node's summary: %v", err)
	}
	sum.Flows = 12
	if err := store.Publish(ctx, "node-a", sum); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := agentDyn.Resource(introspect.AgentInfoResource).Delete(ctx, "node-a", metav1.DeleteOptions{}); err == nil {
		t.Fatal("the agent deleted a summary: it has no delete permission")
	}
	if _, err := agentDyn.Resource(introspect.AgentInfoResource).List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("the agent listed every node's summary: it needs only its own")
	}

	viewer := rest.CopyConfig(c.Config)
	viewer.Impersonate = rest.ImpersonationConfig{UserName: "viewer"}
	viewDyn := dynamic.NewForConfigOrDie(viewer)
	infos, err := introspect.PublishedInfos(ctx, viewDyn, "", time.Now())
	if err != nil || len(infos) != 1 || infos[0].Node != "node-a" || infos[0].Flows != 12 {
		t.Fatalf("the viewer read %+v, %v", infos, err)
	}
	if err := (&introspect.KubeStore{Dynamic: viewDyn, Kube: c.Client}).Publish(ctx, "node-b", sum); err == nil || !strings.Contains(err.Error(), "may not write") {
		t.Fatalf("a viewer wrote a summary: %v", err)
	}
}
