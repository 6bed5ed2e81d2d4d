package policy

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// protocolOf reads a Kubernetes protocol name; "" is TCP, as the API defaults it.
func protocolOf(p corev1.Protocol) (rules.Protocol, bool) {
	switch p {
	case "", corev1.ProtocolTCP:
		return rules.TCP, true
	case corev1.ProtocolUDP:
		return rules.UDP, true
	case corev1.ProtocolSCTP:
		return rules.SCTP, true
	}
	return 0, false
}

// NamedPort is a container port with a name, which policies may use
// instead of a number.
type NamedPort struct {
	Name     string
	Protocol rules.Protocol
	Port     uint16
}

// Pod is what policy needs of a Pod, and all the agent keeps of one: a
// full Pod object is ~10-20 KB, this is ~200 bytes plus its labels.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	IPs             []netip.Addr
	Node            string
	Ports           []NamedPort // named container ports only
}

// Key is "namespace/name".
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// PodFromAPI trims a Pod to what policy needs. It returns nil for pods
// policy never sees: host-network pods (their traffic is the node's) and
// finished pods (their IPs may already belong to someone else).
func PodFromAPI(p *corev1.Pod) *Pod {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	out := &Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Node: p.Spec.NodeName}
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	if len(out.IPs) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	add := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, cp := range c.Ports {
				proto, ok := protocolOf(cp.Protocol)
				if cp.Name == "" || !ok || cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
					continue
				}
				out.Ports = append(out.Ports, NamedPort{Name: cp.Name, Protocol: proto, Port: uint16(cp.ContainerPort)})
			}
		}
	}
	add(p.Spec.Containers)
	add(p.Spec.InitContainers) // sidecars (restartPolicy: Always) serve ports too
	return out
}

// Namespace is what policy needs of a Namespace.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Cluster is the agent's view of everything policy depends on, indexed for
// per-node compilation. Not safe for concurrent use: the caller serialises
// updates and compiles.
type Cluster struct {
	pods       map[string]*Pod
	podsByNS   map[string]map[string]*Pod
	podsByNode map[string]map[string]*Pod
	namespaces map[string]*Namespace
	netpols    map[string]map[string]*networkingv1.NetworkPolicy // namespace → name
	cnps       map[string]*cnp.ClusterNetworkPolicy
	// peers caches the address sets of pod and namespace selectors across
	// compilations while no pod or namespace changes (a policy change then
	// reuses them): selector key → normalized prefixes.
	peers map[string][]netip.Prefix
}

// NewCluster returns an empty view.
func NewCluster() *Cluster {
	return &Cluster{
		pods: map[string]*Pod{}, podsByNS: map[string]map[string]*Pod{}, podsByNode: map[string]map[string]*Pod{},
		namespaces: map[string]*Namespace{}, netpols: map[string]map[string]*networkingv1.NetworkPolicy{},
		cnps: map[string]*cnp.ClusterNetworkPolicy{}, peers: map[string][]netip.Prefix{},
	}
}

// membersChanged drops what depends on pods and namespaces.
func (c *Cluster) membersChanged() {
	if len(c.peers) > 0 {
		c.peers = map[string][]netip.Prefix{}
	}
}

func index[T any](m map[string]map[string]T, outer, inner string, v T) {
	if m[outer] == nil {
		m[outer] = map[string]T{}
	}
	m[outer][inner] = v
}

func unindex[T any](m map[string]map[string]T, outer, inner string) {
	delete(m[outer], inner)
	if len(m[outer]) == 0 {
		delete(m, outer)
	}
}

// SetPod adds or replaces a pod.
func (c *Cluster) SetPod(p *Pod) {
	c.DeletePod(p.Namespace, p.Name)
	c.membersChanged()
	k := p.Key()
	c.pods[k] = p
	index(c.podsByNS, p.Namespace, k, p)
	index(c.podsByNode, p.Node, k, p)
}

// DeletePod removes a pod (absent: nothing happens).
func (c *Cluster) DeletePod(namespace, name string) {
	k := namespace + "/" + name
	old, ok := c.pods[k]
	if !ok {
		return
	}
	delete(c.pods, k)
	c.membersChanged()
	unindex(c.podsByNS, old.Namespace, k)
	unindex(c.podsByNode, old.Node, k)
}

// SetNamespace adds or replaces a namespace.
func (c *Cluster) SetNamespace(ns *Namespace) {
	c.namespaces[ns.Name] = ns
	c.membersChanged()
}

// DeleteNamespace removes a namespace.
func (c *Cluster) DeleteNamespace(name string) {
	delete(c.namespaces, name)
	c.membersChanged()
}

// SetNetworkPolicy adds or replaces a NetworkPolicy (kept by reference:
// the caller must not change it afterwards).
func (c *Cluster) SetNetworkPolicy(p *networkingv1.NetworkPolicy) {
	index(c.netpols, p.Namespace, p.Name, p)
}

// DeleteNetworkPolicy removes a NetworkPolicy.
func (c *Cluster) DeleteNetworkPolicy(namespace, name string) { unindex(c.netpols, namespace, name) }

// SetClusterNetworkPolicy adds or replaces a ClusterNetworkPolicy.
func (c *Cluster) SetClusterNetworkPolicy(p *cnp.ClusterNetworkPolicy) { c.cnps[p.Name] = p }

// DeleteClusterNetworkPolicy removes a ClusterNetworkPolicy.
func (c *Cluster) DeleteClusterNetworkPolicy(name string) { delete(c.cnps, name) }

// Counts reports the view's size (for metrics and benchmarks).
func (c *Cluster) Counts() (pods, namespaces, networkPolicies, clusterNetworkPolicies int) {
	for _, m := range c.netpols {
		networkPolicies += len(m)
	}
	return len(c.pods), len(c.namespaces), networkPolicies, len(c.cnps)
}

// sortedNetworkPolicies returns every NetworkPolicy, by namespace and name.
func (c *Cluster) sortedNetworkPolicies() []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, m := range c.netpols {
		for _, p := range m {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// sortedClusterNetworkPolicies returns the CNPs of a tier in evaluation
// order: priority, then name (the API leaves equal priorities to the
// implementation; the name makes the choice stable).
func (c *Cluster) sortedClusterNetworkPolicies(tier cnp.Tier) []*cnp.ClusterNetworkPolicy {
	var out []*cnp.ClusterNetworkPolicy
	for _, p := range c.cnps {
		if p.Spec.Tier == tier {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spec.Priority != out[j].Spec.Priority {
			return out[i].Spec.Priority < out[j].Spec.Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// unknownTiers lists CNPs whose tier is neither Admin nor Baseline.
func (c *Cluster) unknownTiers() []string {
	var out []string
	for _, p := range c.cnps {
		if p.Spec.Tier != cnp.AdminTier && p.Spec.Tier != cnp.BaselineTier {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}
