package podroute

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimNode is the node informer's transform: it keeps only what routing
// and conditions need, so 10,000 nodes stay cheap in memory.
func TrimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a tombstone: keep as is
	}
	trimmed := &corev1.Node{
		// The creation time orders claims to one pod CIDR (claims.go).
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, CreationTimestamp: n.CreationTimestamp},
		Spec:       corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
		Status:     corev1.NodeStatus{Addresses: n.Status.Addresses},
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			trimmed.Status.Conditions = []corev1.NodeCondition{c}
		}
	}
	return trimmed, nil
}

// FromNode extracts what route computation needs.
func FromNode(n *corev1.Node) Node {
	out := Node{Name: n.Name, PodCIDRs: n.Spec.PodCIDRs, Created: n.CreationTimestamp.Time, UID: string(n.UID)}
	if len(out.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		out.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP:
			out.InternalIPs = append(out.InternalIPs, a.Address)
		case corev1.NodeExternalIP:
			out.ExternalIPs = append(out.ExternalIPs, a.Address)
		}
	}
	return out
}

// routingChanged reports whether an update matters for routes; kubelets
// update node status every few seconds for heartbeats, which do not.
func routingChanged(old, cur *corev1.Node) bool {
	return old.Spec.PodCIDR != cur.Spec.PodCIDR || !slices.Equal(old.Spec.PodCIDRs, cur.Spec.PodCIDRs) ||
		!slices.Equal(old.Status.Addresses, cur.Status.Addresses)
}
