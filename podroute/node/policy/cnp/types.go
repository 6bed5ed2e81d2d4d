// Package cnp is the wire form of ClusterNetworkPolicy
// (policy.networking.k8s.io/v1beta1, sigs.k8s.io/network-policy-api
// v0.3.0), reduced to what t1route enforces plus the fields it must notice
// to fail closed.
//
// The upstream module is not imported: v0.3.0 requires k8s.io/* v0.36 and
// go 1.26.6, which would move every Kubernetes library of this module for
// one set of plain JSON types. The field names and meanings below follow
// the upstream API exactly; objects are read through the dynamic client and
// decoded here.
package cnp

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group, Version and Resource of the API t1route watches.
var (
	GroupVersion = schema.GroupVersion{Group: "policy.networking.k8s.io", Version: "v1beta1"}
	Resource     = GroupVersion.WithResource("clusternetworkpolicies")
	Kind         = "ClusterNetworkPolicy"
)

// ManagementGuardLabels mark the management-network guard's policies:
// podroute/guard applies and owns only policies carrying them, and the
// node agent also enforces those in the node's kernel, for the traffic
// kube-proxy translates there (policy.HostGuard).
var ManagementGuardLabels = map[string]string{"app.kubernetes.io/managed-by": "t1route", "app.kubernetes.io/component": "management-guard"}

// ClusterNetworkPolicy is a cluster-wide network policy in the Admin tier
// (before NetworkPolicy) or the Baseline tier (after it).
type ClusterNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              Spec `json:"spec"`
}

// Tier names.
type Tier string

const (
	AdminTier    Tier = "Admin"
	BaselineTier Tier = "Baseline"
)

// Action is what a rule does with the traffic it matches.
type Action string

const (
	Accept Action = "Accept" // allowed; no later rule of this direction applies
	Deny   Action = "Deny"   // dropped; no later rule applies
	Pass   Action = "Pass"   // the rest of this tier is skipped; the next tier decides
)

// Spec is the policy. Priority 0..1000, lower first within the tier; rules
// within a policy apply in the order written.
type Spec struct {
	Tier     Tier          `json:"tier"`
	Priority int32         `json:"priority"`
	Subject  Subject       `json:"subject"`
	Ingress  []IngressRule `json:"ingress,omitempty"`
	Egress   []EgressRule  `json:"egress,omitempty"`
}

// Subject selects the pods the policy applies to: exactly one field is set.
type Subject struct {
	Namespaces *metav1.LabelSelector `json:"namespaces,omitempty"`
	Pods       *NamespacedPod        `json:"pods,omitempty"`
}

// NamespacedPod selects pods by namespace and pod labels (both: AND).
type NamespacedPod struct {
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
	PodSelector       metav1.LabelSelector `json:"podSelector"`
}

// IngressRule applies Action to traffic from From (and Protocols, if set)
// towards the subject.
type IngressRule struct {
	Name      string        `json:"name,omitempty"`
	Action    Action        `json:"action"`
	From      []IngressPeer `json:"from"`
	Protocols []Protocol    `json:"protocols,omitempty"`
}

// EgressRule applies Action to traffic from the subject to To.
type EgressRule struct {
	Name      string       `json:"name,omitempty"`
	Action    Action       `json:"action"`
	To        []EgressPeer `json:"to"`
	Protocols []Protocol   `json:"protocols,omitempty"`
}

// IngressPeer: exactly one field is set. A peer with none set comes from a
// newer CRD with a field this version does not know: it fails closed.
type IngressPeer struct {
	Namespaces *metav1.LabelSelector `json:"namespaces,omitempty"`
	Pods       *NamespacedPod        `json:"pods,omitempty"`
}

// EgressPeer: exactly one field is set. Nodes and DomainNames (experimental
// channel) are not enforced by t1route: a rule using them fails closed.
type EgressPeer struct {
	Namespaces  *metav1.LabelSelector `json:"namespaces,omitempty"`
	Pods        *NamespacedPod        `json:"pods,omitempty"`
	Nodes       *metav1.LabelSelector `json:"nodes,omitempty"`
	Networks    []string              `json:"networks,omitempty"`
	DomainNames []string              `json:"domainNames,omitempty"`
}

// Protocol matches one protocol's destination port, or a named container
// port of the destination pod: exactly one field is set.
type Protocol struct {
	TCP                  *PortMatch `json:"tcp,omitempty"`
	UDP                  *PortMatch `json:"udp,omitempty"`
	SCTP                 *PortMatch `json:"sctp,omitempty"`
	DestinationNamedPort string     `json:"destinationNamedPort,omitempty"`
}

// PortMatch is a protocol's match; without DestinationPort, every port.
type PortMatch struct {
	DestinationPort *Port `json:"destinationPort,omitempty"`
}

// Port is a number or an inclusive range: exactly one field is set.
type Port struct {
	Number int32      `json:"number,omitempty"`
	Range  *PortRange `json:"range,omitempty"`
}

// PortRange is inclusive; Start < End.
type PortRange struct {
	Start int32 `json:"start"`
	End   int32 `json:"end"`
}

// FromUnstructured decodes an object read through the dynamic client.
func FromUnstructured(u *unstructured.Unstructured) (*ClusterNetworkPolicy, error) {
	var p ClusterNetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
		return nil, fmt.Errorf("decode ClusterNetworkPolicy %s: %w", u.GetName(), err)
	}
	return &p, nil
}

// ToUnstructured encodes a policy for the dynamic client (apiVersion and
// kind are filled in).
func ToUnstructured(p *ClusterNetworkPolicy) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		return nil, fmt.Errorf("encode ClusterNetworkPolicy %s: %w", p.Name, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(GroupVersion.String())
	u.SetKind(Kind)
	return u, nil
}
