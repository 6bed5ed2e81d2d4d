package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
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

// RuleSet is every rule that applies to one node's pods, in evaluation
// order, and which pods NetworkPolicies isolate. A pure function of the
// cluster view and the node name (Compile).
type RuleSet struct {
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

// sortRules puts rules in evaluation order: direction, tier, priority, then
// the policy's name, then rule and part.
func sortRules(rules []Rule) {
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := &rules[i], &rules[j]
		switch {
		case a.Direction != b.Direction:
			return a.Direction < b.Direction
		case a.Tier != b.Tier:
			return a.Tier < b.Tier
		case a.Priority != b.Priority:
			return a.Priority < b.Priority
		case a.Policy.Namespace != b.Policy.Namespace:
			return a.Policy.Namespace < b.Policy.Namespace
		case a.Policy.Name != b.Policy.Name:
			return a.Policy.Name < b.Policy.Name
		case a.Index != b.Index:
			return a.Index < b.Index
		}
		return a.Part < b.Part
	})
}

// normalizePorts sorts and merges ranges; a whole-protocol range absorbs
// the others of its protocol.
func normalizePorts(rs []PortRange) []PortRange {
	if len(rs) == 0 {
		return nil
	}
	rs = append([]PortRange(nil), rs...)
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Protocol != rs[j].Protocol {
			return rs[i].Protocol < rs[j].Protocol
		}
		if rs[i].Start != rs[j].Start {
			return rs[i].Start < rs[j].Start
		}
		return rs[i].End > rs[j].End
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Protocol == last.Protocol && uint32(r.Start) <= uint32(last.End)+1 {
			if r.End > last.End {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func portsKey(rs []PortRange) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String())
		b.WriteByte(',')
	}
	return b.String()
}
