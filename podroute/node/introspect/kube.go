package introspect

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// The published summary is a cluster-scoped T1RouteAgentInfo per node,
// named after the node and owned by it (deleted with it). A CRD rather than
// a Node condition: a condition holds one status and a sentence, and
// writing one needs nodes/status, which lets an agent rewrite any node's
// addresses and conditions (NetworkUnavailable included); the agent needs
// write access only to these objects. Rather than a ConfigMap: typed,
// cluster-scoped, with columns in `kubectl get t1routeagentinfos`.
var (
	AgentInfoResource = schema.GroupVersionResource{Group: "t1route.io", Version: "v1alpha1", Resource: "t1routeagentinfos"}
	agentInfoKind     = "T1RouteAgentInfo"
)

//go:embed crd.yaml
var crdYAML []byte

// CRD is the CustomResourceDefinition of T1RouteAgentInfo (YAML), for render.
func CRD() []byte { return append([]byte(nil), crdYAML...) }

// FieldManager is the agent's server-side apply identity.
const FieldManager = "t1route-agent"

// KubeStore publishes summaries as T1RouteAgentInfo objects with
// server-side apply: one request creates or updates, and only the agent's
// own fields are touched.
type KubeStore struct {
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface // reads the Node's UID, for the owner reference

	mu      sync.Mutex
	nodeUID types.UID
}

// Publish implements SummaryStore.
func (k *KubeStore) Publish(ctx context.Context, node string, s Summary) error {
	uid, err := k.uid(ctx, node)
	if err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var status map[string]any
	if err := json.Unmarshal(b, &status); err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": AgentInfoResource.GroupVersion().String(),
		"kind":       agentInfoKind,
		"metadata": map[string]any{
			"name":   node,
			"labels": map[string]any{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": "agent"},
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "Node", "name": node, "uid": string(uid),
			}},
		},
		"status": status,
	}}
	_, err = k.Dynamic.Resource(AgentInfoResource).Apply(ctx, node, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("publish T1RouteAgentInfo %s: the CRD t1routeagentinfos.t1route.io is not installed (apply `t1route render`'s output): %w", node, err)
		}
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("publish T1RouteAgentInfo %s: the agent's ServiceAccount may not write it (apply `t1route render`'s RBAC): %w", node, err)
		}
		return fmt.Errorf("publish T1RouteAgentInfo %s: %w", node, err)
	}
	return nil
}

func (k *KubeStore) uid(ctx context.Context, node string) (types.UID, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.nodeUID != "" {
		return k.nodeUID, nil
	}
	n, err := k.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read node %s for its summary's owner: %w", node, err)
	}
	k.nodeUID = n.UID
	return n.UID, nil
}

// PublishedInfos reads every node's published summary ("" node) or one
// node's, as AgentInfos sorted by node; a summary whose agent stopped
// writing shows health Unknown. A node without a summary is NotFound.
func PublishedInfos(ctx context.Context, dyn dynamic.Interface, node string, now time.Time) ([]AgentInfo, error) {
	res := dyn.Resource(AgentInfoResource)
	var items []unstructured.Unstructured
	if node != "" {
		u, err := res.Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, &Error{Reason: ReasonNotFound, Message: fmt.Sprintf(
				"node %s has published no datapath summary (no T1RouteAgentInfo %s): check that the node exists and that its t1route agent runs", node, node)}
		}
		if err != nil {
			return nil, publishedErr(err)
		}
		items = append(items, *u)
	} else {
		l, err := res.List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, publishedErr(err)
		}
		items = l.Items
	}
	out := make([]AgentInfo, 0, len(items))
	for _, u := range items {
		raw, _, _ := unstructured.NestedMap(u.Object, "status")
		b, err := json.Marshal(raw)
		if err != nil {
			return nil, err
		}
		var s Summary
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("T1RouteAgentInfo %s: %w", u.GetName(), err)
		}
		out = append(out, InfoOf(u.GetName(), s, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

func publishedErr(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the T1RouteAgentInfo CRD is not installed: apply `t1route render`'s output: %w", err)
	}
	return fmt.Errorf("read T1RouteAgentInfo objects: %w", err)
}
