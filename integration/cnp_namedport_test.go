//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// docs/network-policy.md says ClusterNetworkPolicy named ports are not
// supported with the CRD t1route installs: the API server refuses such a
// policy, so none can reach the agents half-understood. A policy with a
// numbered port is accepted by the same API server (the control).
func TestClusterNetworkPolicyNamedPortRefusedByTheInstalledCRD(t *testing.T) {
	c := StartCluster(t)
	c.ApplyCRD(t, cnp.CRD())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cnps := dynamic.NewForConfigOrDie(c.Config).Resource(cnp.Resource)
	policy := func(name string, protocol map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": cnp.Resource.Group + "/" + cnp.Resource.Version, "kind": "ClusterNetworkPolicy",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{"tier": "Admin", "priority": int64(10),
				"subject": map[string]any{"namespaces": map[string]any{}},
				"ingress": []any{map[string]any{"name": "r", "action": "Deny",
					"from":      []any{map[string]any{"namespaces": map[string]any{}}},
					"protocols": []any{protocol}}}},
		}}
	}
	numbered := policy("numbered", map[string]any{"tcp": map[string]any{"destinationPort": map[string]any{"number": int64(9100)}}})
	if _, err := cnps.Create(ctx, numbered, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a numbered port: %v", err)
	}
	_, err := cnps.Create(ctx, policy("named", map[string]any{"destinationNamedPort": "metrics"}), metav1.CreateOptions{})
	if err == nil {
		got, _ := cnps.Get(ctx, "named", metav1.GetOptions{})
		t.Fatalf("a destinationNamedPort policy was accepted; stored as %v", got.Object["spec"])
	}
	if !strings.Contains(err.Error(), "protocols") {
		t.Errorf("refused, but not for its protocols: %v", err)
	}
	t.Logf("refused: %v", err)
}
