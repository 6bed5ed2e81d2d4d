// Package scale generates the cluster the policy benchmarks use: 10,000
// pods on 100 nodes in 200 namespaces, as the API serves them, and 1,000
// policies (950 NetworkPolicies, 50 ClusterNetworkPolicies including the
// management guard). For tests and benchmarks only.
package scale

import (
	"fmt"
	"runtime"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// The scale the agent is designed for: 10,000 pods on 100 nodes in 200
// namespaces, 1,000 policies (950 NetworkPolicies, 50 ClusterNetworkPolicies).
const (
	Nodes      = 100
	Namespaces = 200
	Pods       = 10000
)

var benchApps = []string{"frontend", "backend", "api", "db", "worker"}

// Pod is the i-th Pod as the API serves it: labels, annotations, owner,
// managed fields, two containers with env, resources, probes and mounts,
// and a status; what an agent holding whole Pods would keep.
func Pod(i int) *corev1.Pod {
	// 50 pods a namespace, spread over 50 nodes; each node has pods of 100
	// namespaces and of every app.
	ns := fmt.Sprintf("ns-%03d", i/(Pods/Namespaces))
	node := i % Nodes
	app := benchApps[(i+i/Nodes)%len(benchApps)]
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
			PodIP:      fmt.Sprintf("100.%d.%d.%d", 96+node/256, node%256, 2+i/Nodes),
			PodIPs:     []corev1.PodIP{{IP: fmt.Sprintf("100.%d.%d.%d", 96+node/256, node%256, 2+i/Nodes)}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.ContainersReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.example.com/team/" + app + ":v1.2.3", ImageID: "sha256:0123456789abcdef",
				ContainerID: "containerd://0123456789abcdef0123456789abcdef"}}},
	}
}

func NetworkPolicies() []*networkingv1.NetworkPolicy {
	port := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	udp := corev1.ProtocolUDP
	end := int32(8090)
	var out []*networkingv1.NetworkPolicy
	for n := range Namespaces {
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

// ClusterNetworkPolicies returns 50 ClusterNetworkPolicies, the first
// being first (the management guard, which package policy renders).
func ClusterNetworkPolicies(first ...*cnp.ClusterNetworkPolicy) []*cnp.ClusterNetworkPolicy {
	out := append([]*cnp.ClusterNetworkPolicy(nil), first...)
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

// Namespace is the n-th namespace: its team label is what the
// policies select.
func Namespace(n int) *corev1.Namespace {
	name := fmt.Sprintf("ns-%03d", n)
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"kubernetes.io/metadata.name": name, "team": fmt.Sprintf("team-%d", n%20)}}}
}

func netpol(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

// HeapInUse is the live heap after two collections (the second frees what
// the first left to finalizers): what the benchmarks' memory figures subtract.
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
