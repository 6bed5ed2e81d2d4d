package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimPod is an informer transform: it keeps of a Pod only what policy and
// the informer itself need (names, UID, resourceVersion, labels, node,
// host network, named container ports, phase, IPs), so an agent watching
// every Pod of the cluster holds ~2 KB a pod instead of the whole object
// (~8 KB, with managed fields, specs and statuses). Idempotent; objects of
// other types (a deletion tombstone) pass unchanged.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion, Labels: p.Labels},
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	trim := func(cs []corev1.Container) []corev1.Container {
		var out []corev1.Container
		for _, c := range cs {
			var ports []corev1.ContainerPort
			for _, cp := range c.Ports {
				if cp.Name != "" {
					ports = append(ports, corev1.ContainerPort{Name: cp.Name, ContainerPort: cp.ContainerPort, Protocol: cp.Protocol})
				}
			}
			if len(ports) > 0 {
				out = append(out, corev1.Container{Name: c.Name, Ports: ports})
			}
		}
		return out
	}
	out.Spec.Containers, out.Spec.InitContainers = trim(p.Spec.Containers), trim(p.Spec.InitContainers)
	return out, nil
}

// TrimNamespace is an informer transform keeping a Namespace's name and labels.
func TrimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels}}, nil
}

// WriteRuleSet stores a node's rules where the flow sync (the agent's and
// each CNI invocation's) reads them; written whole and renamed into place,
// so a reader never sees half a file.
func WriteRuleSet(path string, rs *RuleSet) error {
	data, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write policy rules: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write policy rules: %w", err)
	}
	return nil
}

// ReadRuleSet reads what WriteRuleSet wrote. A missing file is no rules
// (nil, nil): before the agent's first computation nothing is isolated.
func ReadRuleSet(path string) (*RuleSet, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy rules: %w", err)
	}
	var rs RuleSet
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("policy rules in %s are unreadable (the agent rewrites them): %w", path, err)
	}
	return &rs, nil
}

// ParseFlowStats reads `ovs-ofctl dump-flows` output and sums n_packets by
// cookie, for the policy flows only (CookieTag).
func ParseFlowStats(dump string) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, line := range strings.Split(dump, "\n") {
		var cookie, packets uint64
		var haveCookie, havePackets bool
		for _, f := range strings.Split(strings.TrimSpace(line), ", ") {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok {
				continue
			}
			switch k {
			case "cookie":
				c, err := strconv.ParseUint(v, 0, 64)
				cookie, haveCookie = c, err == nil
			case "n_packets":
				n, err := strconv.ParseUint(v, 10, 64)
				packets, havePackets = n, err == nil
			}
		}
		if haveCookie && havePackets && cookie&CookieMask == CookieTag && cookie != CookieTag {
			out[cookie] += packets
		}
	}
	return out
}
