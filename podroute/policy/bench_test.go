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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/policy/cnp"
)

// The scale the agent is designed for: 10,000 pods on 100 nodes in 200
// namespaces, 1,000 policies (950 NetworkPolicies, 50 ClusterNetworkPolicies).
const (
	benchNodes      = 100
	benchNamespaces = 200
	benchPods       = 10000
)

var benchApps = []string{"frontend", "backend", "api", "db", "worker"}

// benchPod is a Pod as the API serves it: labels, annotations, owner,
// managed fields, two containers with env, resources, probes and mounts,
// and a status; what an agent holding whole Pods would keep.
func benchPod(i int) *corev1.Pod {
	// 50 pods a namespace, spread over 50 nodes; each node has pods of 100
	// namespaces and of every app.
	ns := fmt.Sprintf("ns-%03d", i/(benchPods/benchNamespaces))
	node := i % benchNodes
	app := benchApps[(i+i/benchNodes)%len(benchApps)]
	ctr := func(name string, port int32) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example.com/team/" + app + ":v1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}, {Name: "metrics", ContainerPort: 9090}},
			Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "DATABASE_URL", Value: "postgres://db." + ns + ".svc:5432/app"}},
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("%s-%d-7f9c6d5b8-x%04d", app, i, i), UID: "0e9a0a77-4b6c-4a4e-9a51-1f2e3d4c5b6a", ResourceVersion: "123456789",
			Labels:          map[string]string{"app": app, "pod-template-hash": "7f9c6d5b8", "version": "v1"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z", "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-7f9c6d5b8", UID: "1f2e3d4c-5b6a-4a4e-9a51-0e9a0a774b6c"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: "Update", APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 1500)}}},
		},
		Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%03d", node), ServiceAccountName: "default",
			Containers:  []corev1.Container{ctr("app", 8080), ctr("sidecar", 15001)},
			Volumes:     []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: fmt.Sprintf("198.51.100.%d", node+1),
			PodIP:      fmt.Sprintf("100.%d.%d.%d", 96+node/256, node%256, 2+i/benchNodes),
			PodIPs:     []corev1.PodIP{{IP: fmt.Sprintf("100.%d.%d.%d", 96+node/256, node%256, 2+i/benchNodes)}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.ContainersReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.example.com/team/" + app + ":v1.2.3", ImageID: "sha256:0123456789abcdef",
				ContainerID: "containerd://0123456789abcdef0123456789abcdef"}}},
	}
}

func benchNetworkPolicies() []*networkingv1.NetworkPolicy {
	port := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	udp := corev1.ProtocolUDP
	end := int32(8090)
	var out []*networkingv1.NetworkPolicy
	for n := range benchNamespaces {
		ns := fmt.Sprintf("ns-%03d", n)
		out = append(out,
			netpol(ns, "default-deny", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}),
			netpol(ns, "frontend-to-backend", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "backend"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "frontend")}}, Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromString("http"))}}}}}),
			netpol(ns, "api-from-teams", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "api"), Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", fmt.Sprintf("team-%d", (n+1)%20))}, {NamespaceSelector: sel("team", fmt.Sprintf("team-%d", n%20)), PodSelector: sel("app", "frontend")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromInt32(8080)), EndPort: &end}, {Port: port(intstr.FromString("metrics"))}}}}}),
			netpol(ns, "egress", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "worker"), PolicyTypes: []networkingv1.PolicyType{"Egress"},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"100.64.0.0/10"}}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromInt32(443))}}},
					{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("kubernetes.io/metadata.name", "kube-system"), PodSelector: sel("k8s-app", "kube-dns")}},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: port(intstr.FromInt32(53))}}},
					{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "db")}}, Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromInt32(5432))}}},
				}}),
		)
		if n%4 != 4 { // every namespace
			out = append(out, netpol(ns, "monitoring", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "monitoring")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromString("metrics"))}}}}}))
		}
	}
	return out[:950]
}

func benchClusterNetworkPolicies() []*cnp.ClusterNetworkPolicy {
	var out []*cnp.ClusterNetworkPolicy
	guard, _ := ManagementGuard([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}, DefaultGuardSelectors())
	out = append(out, guard...)
	for i := len(out); i < 50; i++ {
		team := fmt.Sprintf("team-%d", i%20)
		p := &cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cnp-%02d", i)}}
		if i%2 == 0 {
			p.Spec = cnp.Spec{Tier: cnp.AdminTier, Priority: int32(10 + i), Subject: cnp.Subject{Namespaces: sel("team", team)},
				Ingress: []cnp.IngressRule{{Action: cnp.Accept, From: []cnp.IngressPeer{{Namespaces: sel("team", "monitoring")}},
					Protocols: []cnp.Protocol{{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Number: 9090}}}}}},
				Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: []string{"198.51.100.0/24"}}},
					Protocols: []cnp.Protocol{{TCP: &cnp.PortMatch{DestinationPort: &cnp.Port{Range: &cnp.PortRange{Start: 1, End: 1023}}}}}}}}
		} else {
			p.Spec = cnp.Spec{Tier: cnp.BaselineTier, Priority: int32(i), Subject: cnp.Subject{Namespaces: sel("team", team)},
				Ingress: []cnp.IngressRule{{Action: cnp.Deny, From: []cnp.IngressPeer{{Namespaces: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "team", Operator: metav1.LabelSelectorOpNotIn, Values: []string{team}}}}}}}}}
		}
		out = append(out, p)
	}
	return out
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchCluster builds the view from API objects as the agent's informers
// would deliver them, trimming each Pod as it arrives.
func benchCluster() *Cluster {
	c := NewCluster()
	for n := range benchNamespaces {
		name := fmt.Sprintf("ns-%03d", n)
		c.SetNamespace(&Namespace{Name: name, Labels: map[string]string{"kubernetes.io/metadata.name": name, "team": fmt.Sprintf("team-%d", n%20)}})
	}
	c.SetNamespace(&Namespace{Name: "kube-system", Labels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}})
	for i := range benchPods {
		c.SetPod(PodFromAPI(benchPod(i)))
	}
	for _, p := range benchNetworkPolicies() {
		c.SetNetworkPolicy(p)
	}
	for _, p := range benchClusterNetworkPolicies() {
		c.SetClusterNetworkPolicy(p)
	}
	return c
}

func benchLocal(c *Cluster, node string) []LocalPod {
	var out []LocalPod
	port := 10
	for _, p := range c.podsByNode[node] {
		port++
		out = append(out, LocalPod{Key: p.Key(), OFPort: port, IPs: p.IPs})
	}
	return out
}

// BenchmarkPolicyScale prints what the issue asks for at 10,000 pods and
// 1,000 policies: memory of the agent's policy state (and what whole Pods
// would cost), one node's full recompute, a policy change to its flows,
// and flows per rule.
func BenchmarkPolicyScale(b *testing.B) {
	before := heapInUse()
	full := make([]*corev1.Pod, benchPods)
	for i := range full {
		full[i] = benchPod(i)
	}
	fullBytes := heapInUse() - before
	runtime.KeepAlive(full)
	full = nil
	before = heapInUse()
	c := benchCluster()
	viewBytes := heapInUse() - before
	pods, nss, nps, cnps := c.Counts()

	opt := Options{Tables: testTables, Zone: 0xfff0}
	gw := Node{GatewayPort: 1, Addrs: []netip.Addr{netip.MustParseAddr("100.96.7.1")}}
	// Every node once: what the agents cost together, the spread, and the
	// node with the most flows, which the timings below use.
	cpu0 := cpuTime()
	c.membersChanged() // as if every agent computed its node alone
	node, maxFlows, sumFlows, sumRules := "", 0, 0, 0
	for n := range benchNodes {
		nn := fmt.Sprintf("node-%03d", n)
		f := Render(Compile(c, nn), benchLocal(c, nn), gw, opt)
		if len(f.Flows) > maxFlows {
			node, maxFlows = nn, len(f.Flows)
		}
		sumFlows, sumRules = sumFlows+len(f.Flows)-BaseFlows-2, sumRules+f.Rules
	}
	allCPU := cpuTime() - cpu0

	local := benchLocal(c, node)
	recompute := func() (*RuleSet, *FlowSet) {
		rs := Compile(c, node)
		return rs, Render(rs, local, gw, opt)
	}
	c.membersChanged()
	before = heapInUse()
	rs, fs := recompute()
	if len(rs.Problems)+len(fs.Problems) > 0 {
		b.Fatal(rs.Problems, fs.Problems)
	}
	stateBytes := heapInUse() - before // the peer cache, the rules and the flows of one node
	policyFlows := len(fs.Flows) - BaseFlows - 2
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

	fmt.Printf("policy scale: %d pods, %d namespaces, %d NetworkPolicies, %d ClusterNetworkPolicies, %d nodes\n", pods, nss, nps, cnps, benchNodes)
	fmt.Printf("policy memory: %.1f MB for the trimmed view of every pod, namespace and policy (%d B a pod); whole Pod objects would take %.1f MB (%d B a pod)\n",
		float64(viewBytes)/1e6, viewBytes/uint64(pods), float64(fullBytes)/1e6, fullBytes/uint64(pods))
	fmt.Printf("policy memory of one node's computed state (%s: cached peer sets, rules, flows): %.1f MB\n", node, float64(stateBytes)/1e6)
	fmt.Printf("policy flows: %d a node on average, %.1f a rule; the most on one node: %d (%s, %d local pods, %d rules, %.1f flows a rule)\n",
		sumFlows/benchNodes, float64(sumFlows)/float64(sumRules), policyFlows, node, len(local), fs.Rules, float64(policyFlows)/float64(fs.Rules))
	fmt.Printf("policy full recompute (%s, after a pod change): median %s, CPU %s\n", node, median(fulls), (fullCPU / runs).Round(100*time.Microsecond))
	fmt.Printf("policy change -> flows computed (%s): median %s, CPU %s (installing them: make e2e)\n", node, median(changes), (changeCPU / runs).Round(100*time.Microsecond))
	fmt.Printf("policy recompute of all %d nodes (as a central computation would): CPU %s\n", benchNodes, allCPU.Round(time.Millisecond))
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
