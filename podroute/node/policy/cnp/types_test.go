package cnp

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// A policy as a user writes it (the upstream API's field names) decodes
// into these types and encodes back unchanged.
const example = `apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata:
  name: guard
spec:
  tier: Admin
  priority: 10
  subject:
    pods:
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchExpressions:
        - key: app
          operator: In
          values: [vsphere-csi-node]
  ingress:
  - name: from-monitoring
    action: Accept
    from:
    - namespaces:
        matchLabels:
          team: monitoring
    protocols:
    - tcp:
        destinationPort:
          number: 9100
    - destinationNamedPort: metrics
  egress:
  - name: vcenter
    action: Pass
    to:
    - networks: [203.0.113.0/28, 2001:db8:1::/64]
    protocols:
    - udp:
        destinationPort:
          range: {start: 1000, end: 2000}
    - sctp: {}
  - action: Deny
    to:
    - domainNames: ["*.example.com"]
    - nodes: {}
`

func TestDecodeEncode(t *testing.T) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(example), &obj); err != nil {
		t.Fatal(err)
	}
	p, err := FromUnstructured(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	switch {
	case p.Name != "guard" || s.Tier != AdminTier || s.Priority != 10:
		t.Errorf("metadata/tier/priority: %+v", p)
	case s.Subject.Pods == nil || s.Subject.Pods.PodSelector.MatchExpressions[0].Values[0] != "vsphere-csi-node":
		t.Errorf("subject: %+v", s.Subject)
	case s.Ingress[0].Protocols[0].TCP.DestinationPort.Number != 9100 || s.Ingress[0].Protocols[1].DestinationNamedPort != "metrics":
		t.Errorf("ingress protocols: %+v", s.Ingress[0].Protocols)
	case s.Egress[0].Action != Pass || !reflect.DeepEqual(s.Egress[0].To[0].Networks, []string{"203.0.113.0/28", "2001:db8:1::/64"}):
		t.Errorf("egress networks: %+v", s.Egress[0])
	case s.Egress[0].Protocols[0].UDP.DestinationPort.Range.End != 2000 || s.Egress[0].Protocols[1].SCTP == nil:
		t.Errorf("egress protocols: %+v", s.Egress[0].Protocols)
	case s.Egress[1].To[0].DomainNames == nil || s.Egress[1].To[1].Nodes == nil:
		t.Errorf("experimental peers must be noticed to fail closed: %+v", s.Egress[1].To)
	}
	u, err := ToUnstructured(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromUnstructured(u)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("round trip changed the policy: %v\n%+v\n%+v", err, back, p)
	}
	if u.GetAPIVersion() != "policy.networking.k8s.io/v1beta1" || u.GetKind() != "ClusterNetworkPolicy" {
		t.Errorf("apiVersion/kind %s %s", u.GetAPIVersion(), u.GetKind())
	}
	if _, err := FromUnstructured(&unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"priority": "high"}}}); err == nil {
		t.Error("a priority that is not a number was accepted")
	}
}
