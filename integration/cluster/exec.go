//go:build linux

package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Exec runs a command in a node's network and mount namespaces (as a
// process on that node would run) and returns its combined output.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	a := n.nsenter(args...)
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", strings.Join(args, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PodExec runs a program of this machine (curl, ping, ip, …) in a pod's
// network namespace, as the pod would run it, whatever its image holds. It
// finds the pod's processes in the kubelet's pod cgroup (cgroupfs driver:
// …/kubepods/<qos>/pod<UID>).
func (c *Cluster) PodExec(ctx context.Context, pod *corev1.Pod, args ...string) (string, error) {
	var node *Node
	for _, n := range c.Nodes {
		if n.Name == pod.Spec.NodeName {
			node = n
		}
	}
	if node == nil {
		return "", fmt.Errorf("pod %s/%s is on node %q, not one of this cluster's", pod.Namespace, pod.Name, pod.Spec.NodeName)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	want := "pod" + string(pod.UID)
	pid := 0
	for _, m := range mounts {
		filepath.WalkDir(filepath.Join(m, node.Cgroup), func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
			if err != nil || pid != 0 || !d.IsDir() || d.Name() != want {
				return nil
			}
			if pids := cgroupPids(strings.TrimPrefix(p, m)); len(pids) > 0 {
				pid = pids[0]
			}
			return filepath.SkipAll
		})
		if pid != 0 {
			break
		}
	}
	if pid == 0 {
		return "", fmt.Errorf("no process of pod %s/%s (UID %s) in %s's cgroups", pod.Namespace, pod.Name, pod.UID, node.Name)
	}
	a := append([]string{"nsenter", "--target", strconv.Itoa(pid), "--net", "--"}, args...)
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in pod %s/%s: %w: %s", strings.Join(args, " "), pod.Namespace, pod.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
