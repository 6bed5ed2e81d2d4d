package policy

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/node/policy/internal/scale"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/pipeline"

	"github.com/t1route/t1route/podroute/guard"

	"github.com/t1route/t1route/podroute/config"
)

// benchCluster builds the view from API objects as the agent's informers
// would deliver them, trimming each Pod as it arrives.
func benchCluster() *Cluster {
	c := NewCluster()
	for n := range scale.Namespaces {
		ns := scale.Namespace(n)
		c.SetNamespace(&Namespace{Name: ns.Name, Labels: ns.Labels})
	}
	c.SetNamespace(&Namespace{Name: "kube-system", Labels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}})
	for i := range scale.Pods {
		c.SetPod(PodFromAPI(scale.Pod(i)))
	}
	for _, p := range scale.NetworkPolicies() {
		c.SetNetworkPolicy(p)
	}
	guard, _ := guard.ManagementGuard([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}, config.DefaultGuardSelectors())
	for _, p := range scale.ClusterNetworkPolicies(guard...) {
		c.SetClusterNetworkPolicy(p)
	}
	return c
}

func benchLocal(c *Cluster, node string) []pipeline.LocalPod {
	var out []pipeline.LocalPod
	port := 10
	for _, p := range c.podsByNode[node] {
		port++
		out = append(out, pipeline.LocalPod{Key: p.Key(), OFPort: port, IPs: p.IPs})
	}
	return out
}

// BenchmarkPolicyScale prints what the issue asks for at 10,000 pods and
// 1,000 policies: memory of the agent's policy state (and what whole Pods
// would cost), one node's full recompute, a policy change to its flows,
// and flows per rule.
func BenchmarkPolicyScale(b *testing.B) {
	before := scale.HeapInUse()
	full := make([]*corev1.Pod, scale.Pods)
	for i := range full {
		full[i] = scale.Pod(i)
	}
	fullBytes := scale.HeapInUse() - before
	runtime.KeepAlive(full)
	full = nil
	before = scale.HeapInUse()
	c := benchCluster()
	viewBytes := scale.HeapInUse() - before
	pods, nss, nps, cnps := c.Counts()

	opt := pipeline.PolicyOptions{Tables: testTables, Zone: 0xfff0}
	gw := pipeline.PolicyNode{GatewayPort: 1, Addrs: []netip.Addr{netip.MustParseAddr("100.96.7.1")}}
	// Every node once: what the agents cost together, the spread, and the
	// node with the most flows, which the timings below use.
	cpu0 := cpuTime()
	c.membersChanged() // as if every agent computed its node alone
	node, maxFlows, sumFlows, sumRules := "", 0, 0, 0
	for n := range scale.Nodes {
		nn := fmt.Sprintf("node-%03d", n)
		f := pipeline.RenderPolicy(Compile(c, nn), benchLocal(c, nn), gw, opt)
		if len(f.Flows) > maxFlows {
			node, maxFlows = nn, len(f.Flows)
		}
		sumFlows, sumRules = sumFlows+len(f.Flows)-pipeline.BaseFlows-2, sumRules+f.Rules
	}
	allCPU := cpuTime() - cpu0

	local := benchLocal(c, node)
	recompute := func() (*rules.Set, *pipeline.FlowSet) {
		rs := Compile(c, node)
		return rs, pipeline.RenderPolicy(rs, local, gw, opt)
	}
	c.membersChanged()
	before = scale.HeapInUse()
	rs, fs := recompute()
	if len(rs.Problems)+len(fs.Problems) > 0 {
		b.Fatal(rs.Problems, fs.Problems)
	}
	stateBytes := scale.HeapInUse() - before // the peer cache, the rules and the flows of one node
	policyFlows := len(fs.Flows) - pipeline.BaseFlows - 2
	runtime.KeepAlive(rs)

	// A full recompute after a pod or namespace change starts without the
	// cached peer sets; after a policy change it keeps them.
	cold := func() {
		c.membersChanged()
		recompute()
	}
	b.Run("full-recompute", func(b *testing.B) {
		for b.Loop() {
			cold()
		}
	})
	// A policy change: one namespace's API policy gets another port; the
	// node's rules and flows are recomputed from the view.
	var changed *networkingv1.NetworkPolicy
	for _, p := range c.podsByNode[node] {
		changed = c.netpols[p.Namespace]["api-from-teams"].DeepCopy()
		break
	}
	change := func(i int) {
		p := changed.DeepCopy()
		v := intstr.FromInt32(int32(10000 + i%1000))
		p.Spec.Ingress[0].Ports = append(p.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: &v})
		c.SetNetworkPolicy(p)
		recompute()
	}
	b.Run("policy-change", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			change(i)
		}
	})
	const runs = 15
	var fulls, changes []time.Duration
	var fullCPU, changeCPU time.Duration
	for i := range runs {
		start, cpu := time.Now(), cpuTime()
		cold()
		fulls, fullCPU = append(fulls, time.Since(start)), fullCPU+cpuTime()-cpu
		start, cpu = time.Now(), cpuTime()
		change(i)
		changes, changeCPU = append(changes, time.Since(start)), changeCPU+cpuTime()-cpu
	}

	fmt.Printf("policy scale: %d pods, %d namespaces, %d NetworkPolicies, %d ClusterNetworkPolicies, %d nodes\n", pods, nss, nps, cnps, scale.Nodes)
	fmt.Printf("policy memory: %.1f MB for the trimmed view of every pod, namespace and policy (%d B a pod); whole Pod objects would take %.1f MB (%d B a pod)\n",
		float64(viewBytes)/1e6, viewBytes/uint64(pods), float64(fullBytes)/1e6, fullBytes/uint64(pods))
	fmt.Printf("policy memory of one node's computed state (%s: cached peer sets, rules, flows): %.1f MB\n", node, float64(stateBytes)/1e6)
	fmt.Printf("policy flows: %d a node on average, %.1f a rule; the most on one node: %d (%s, %d local pods, %d rules, %.1f flows a rule)\n",
		sumFlows/scale.Nodes, float64(sumFlows)/float64(sumRules), policyFlows, node, len(local), fs.Rules, float64(policyFlows)/float64(fs.Rules))
	fmt.Printf("policy full recompute (%s, after a pod change): median %s, CPU %s\n", node, median(fulls), (fullCPU / runs).Round(100*time.Microsecond))
	fmt.Printf("policy change -> flows computed (%s): median %s, CPU %s (installing them: make e2e)\n", node, median(changes), (changeCPU / runs).Round(100*time.Microsecond))
	fmt.Printf("policy recompute of all %d nodes (as a central computation would): CPU %s\n", scale.Nodes, allCPU.Round(time.Millisecond))
	b.ReportMetric(float64(viewBytes)/1e6, "view-MB")
	b.ReportMetric(float64(policyFlows)/float64(fs.Rules), "flows/rule")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}

// cpuTime is the CPU time this process has used: figures that do not
// depend on what else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
