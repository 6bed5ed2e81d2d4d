package enforcer

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/internal/scale"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/guard"

	"github.com/t1route/t1route/podroute/config"
)

// BenchmarkEnforcerScale runs the agent's policy side for one node against
// an API holding 10,000 pods and 1,000 policies and prints its memory (the
// informers' trimmed caches, the view, the rules) and the time from a
// NetworkPolicy update to the node's new rules being published.
func BenchmarkEnforcerScale(b *testing.B) {
	var objs []k8sruntime.Object
	for n := range scale.Namespaces {
		objs = append(objs, scale.Namespace(n))
	}
	for i := range scale.Pods {
		objs = append(objs, scale.Pod(i))
	}
	nps := scale.NetworkPolicies()
	for _, np := range nps {
		objs = append(objs, np)
	}
	kube := fake.NewClientset(objs...)
	guard, _ := guard.ManagementGuard([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}, config.DefaultGuardSelectors())
	var cnps []k8sruntime.Object
	for _, p := range scale.ClusterNetworkPolicies(guard...) {
		u, err := cnp.ToUnstructured(p)
		if err != nil {
			b.Fatal(err)
		}
		cnps = append(cnps, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(k8sruntime.NewScheme(),
		map[schema.GroupVersionResource]string{cnp.Resource: "ClusterNetworkPolicyList"}, cnps...)
	objs, cnps = nil, nil

	const node = "node-050"
	before := scale.HeapInUse()
	start := time.Now()
	e := New(Config{NodeName: node, Window: 10 * time.Millisecond}, kube, dyn, zap.NewNop(), nil)
	e.served = func() bool { return true }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx) //nolint:errcheck
	for deadline := time.Now().Add(2 * time.Minute); !e.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("not ready within 2 minutes")
		}
	}
	for !hasRuleOf(e.Rules(), rules.KindClusterNetworkPolicy, "cnp-05") { // the CNP informer syncs after the others
		select {
		case <-e.Changes():
		case <-time.After(50 * time.Millisecond):
		}
	}
	synced := time.Since(start)
	agent := scale.HeapInUse() - before

	// A policy of a namespace with pods on this node gets another port.
	var target *networkingv1.NetworkPolicy
	for _, np := range nps {
		if slices.ContainsFunc(e.Rules().Rules, func(r rules.Rule) bool {
			return r.Policy.Namespace == np.Namespace && r.Policy.Name == np.Name && np.Name == "api-from-teams"
		}) {
			target = np.DeepCopy()
			break
		}
	}
	if target == nil {
		b.Fatalf("no api-from-teams policy has a rule on %s", node)
	}
	var lat []time.Duration
	for i := range 10 {
		p := target.DeepCopy()
		v := intstr.FromInt32(int32(20000 + i))
		p.Spec.Ingress[0].Ports = append(p.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: &v})
		old := e.Rules()
		start := time.Now()
		if _, err := kube.NetworkingV1().NetworkPolicies(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		for e.Rules() == old {
			select {
			case <-e.Changes():
			case <-time.After(30 * time.Second):
				b.Fatalf("the update of %s/%s changed no rule of %s", p.Namespace, p.Name, node)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	fmt.Printf("policy agent: %d pods, %d NetworkPolicies, %d ClusterNetworkPolicies watched; synced and first rules in %s\n",
		scale.Pods, len(nps), 50, synced.Round(time.Millisecond))
	fmt.Printf("policy agent memory: %.1f MB (informer caches of trimmed pods, namespaces and policies, the view, %s's rules)\n",
		float64(agent)/1e6, node)
	fmt.Printf("policy agent: NetworkPolicy updated -> %s's rules published: median %s, max %s (window 10 ms)\n",
		node, lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	b.ReportMetric(float64(agent)/1e6, "agent-MB")
	runtime.KeepAlive(kube)
	runtime.KeepAlive(dyn)
}
