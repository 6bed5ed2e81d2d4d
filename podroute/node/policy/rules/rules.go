// Package rules holds what a node's policy enforcement computes (the rules
// that apply to its pods, from package policy) and renders them as
// OpenFlow flows. It depends on nothing of Kubernetes, so the CNI plugin,
// which renders the same flows when it attaches a pod, stays small.
package rules

import (
	"fmt"
	"net/netip"
)

// Direction is a rule's direction, seen from its subject pods.
type Direction uint8

const (
	Ingress Direction = iota // towards the subject
	Egress                   // from the subject
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Tier is where a rule is evaluated: Admin, then NetworkPolicy, then
// Baseline; the first tier that decides wins.
type Tier uint8

const (
	TierAdmin Tier = iota
	TierNetworkPolicy
	TierBaseline
)

func (t Tier) String() string {
	return [...]string{"Admin", "NetworkPolicy", "Baseline"}[t]
}

// Action is what a matching rule does.
type Action uint8

const (
	Accept Action = iota // allowed; nothing later in this direction applies
	Deny                 // dropped
	Pass                 // the rest of the tier is skipped; the next tier decides
)

func (a Action) String() string {
	return [...]string{"Accept", "Deny", "Pass"}[a]
}

// Kinds of policy a rule comes from.
const (
	KindNetworkPolicy        = "NetworkPolicy"
	KindClusterNetworkPolicy = "ClusterNetworkPolicy"
)

// PolicyRef names the policy a rule or a drop comes from.
type PolicyRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r PolicyRef) String() string {
	if r.Namespace != "" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// Rule is one policy rule reduced to one node: which of the node's pods it
// applies to, which peer addresses, which ports, and what it does. Parts of
// one API rule (Part > 0) differ only where named ports resolved to
// different numbers on different pods.
type Rule struct {
	Policy    PolicyRef `json:"policy"`
	Tier      Tier      `json:"tier"`
	Priority  int32     `json:"priority,omitempty"` // the ClusterNetworkPolicy's; 0 for NetworkPolicy
	Direction Direction `json:"direction"`
	Index     int       `json:"index"`          // position among the policy's rules of this direction
	Name      string    `json:"name,omitempty"` // the rule's own name, if it has one
	Part      int       `json:"part,omitempty"`
	Action    Action    `json:"action"`
	// Pods are the local subject pods, "namespace/name", sorted.
	Pods []string `json:"pods"`
	// Peers are the addresses at the other end (sources for ingress,
	// destinations for egress), disjoint and sorted, unless AnyPeer.
	AnyPeer bool           `json:"anyPeer,omitempty"`
	Peers   []netip.Prefix `json:"peers,omitempty"`
	// Ports are destination ports, unless AnyPort (then every packet,
	// ICMP included).
	AnyPort bool        `json:"anyPort,omitempty"`
	Ports   []PortRange `json:"ports,omitempty"`
}

// Label is a short human name of the rule, for logs and metrics.
func (r *Rule) Label() string {
	s := fmt.Sprintf("%s %s rule %d", r.Policy, r.Direction, r.Index)
	if r.Name != "" {
		s += " (" + r.Name + ")"
	}
	return s
}

// Set is every rule that applies to one node's pods, in evaluation
// order, and which pods NetworkPolicies isolate: a pure function of the
// cluster view and the node name (policy.Compile).
type Set struct {
	Node  string `json:"node"`
	Rules []Rule `json:"rules"`
	// Isolated[d] maps each local pod that NetworkPolicies isolate in
	// direction d to those policies: such a pod gets, in the NetworkPolicy
	// tier, only what their rules allow.
	Isolated [2]map[string][]PolicyRef `json:"isolated"`
	// Problems are policies or parts of them that could not be applied as
	// written, and what was done instead; for logs and events.
	Problems []string `json:"problems,omitempty"`
}

// Protocol is an IP protocol number a policy can name.
type Protocol uint8

const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("protocol %d", uint8(p))
}

// PortRange is an inclusive range of destination ports of one protocol;
// 0-65535 is every port (and then no port is matched at all).
type PortRange struct {
	Protocol   Protocol
	Start, End uint16
}

// AllPorts reports whether the range is the whole protocol.
func (r PortRange) AllPorts() bool { return r.Start == 0 && r.End == 65535 }

func (r PortRange) String() string {
	switch {
	case r.AllPorts():
		return r.Protocol.String()
	case r.Start == r.End:
		return fmt.Sprintf("%s/%d", r.Protocol, r.Start)
	}
	return fmt.Sprintf("%s/%d-%d", r.Protocol, r.Start, r.End)
}

// Contains reports whether a packet of this protocol and port is in range.
func (r PortRange) Contains(proto Protocol, port uint16) bool {
	return proto == r.Protocol && port >= r.Start && port <= r.End
}
