//go:build linux

package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"os"
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
// network namespace, as the pod would run it, whatever its image holds.
func (c *Cluster) PodExec(ctx context.Context, pod *corev1.Pod, args ...string) (string, error) {
	pids, err := c.podPids(pod, "pod"+string(pod.UID))
	if err != nil {
		return "", err
	}
	a := append([]string{"nsenter", "--target", strconv.Itoa(pids[0]), "--net", "--"}, args...)
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in pod %s/%s: %w: %s", strings.Join(args, " "), pod.Namespace, pod.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ContainerPids returns the processes of one container of a running pod
// (to signal them as a fault would, e.g. SIGSTOP for a hung process).
func (c *Cluster) ContainerPids(pod *corev1.Pod, container string) ([]int, error) {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name != container {
			continue
		}
		_, id, ok := strings.Cut(s.ContainerID, "://")
		if !ok || s.State.Running == nil {
			return nil, fmt.Errorf("container %s of pod %s/%s is not running (%q)", container, pod.Namespace, pod.Name, s.ContainerID)
		}
		return c.podPids(pod, id)
	}
	return nil, fmt.Errorf("pod %s/%s has no status of a container %s", pod.Namespace, pod.Name, container)
}

// podPids returns the processes in the first cgroup named dir under the
// cgroup of pod's node, in the kubelet's cgroupfs layout
// (…/kubepods/<qos>/pod<UID>/<container ID>).
func (c *Cluster) podPids(pod *corev1.Pod, dir string) ([]int, error) {
	var node *Node
	for _, n := range c.Nodes {
		if n.Name == pod.Spec.NodeName {
			node = n
		}
	}
	if node == nil {
		return nil, fmt.Errorf("pod %s/%s is on node %q, not one of this cluster's", pod.Namespace, pod.Name, pod.Spec.NodeName)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, m := range mounts {
		filepath.WalkDir(filepath.Join(m, node.Cgroup), func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
			if err != nil || len(pids) > 0 || !d.IsDir() || d.Name() != dir {
				return nil
			}
			pids = cgroupPids(strings.TrimPrefix(p, m))
			return filepath.SkipAll
		})
		if len(pids) > 0 {
			return pids, nil
		}
	}
	return nil, fmt.Errorf("no process of pod %s/%s (UID %s) in a cgroup %s of %s", pod.Namespace, pod.Name, pod.UID, dir, node.Name)
}

// PodExecResolving runs a program of this machine (curl, getent, …) as
// container of pod would resolve and connect: in the pod's network
// namespace, with the container's /etc/resolv.conf (the kubelet's DNS
// settings: the cluster DNS, search domains, ndots) in place of this
// machine's, in a mount namespace of its own.
func (c *Cluster) PodExecResolving(ctx context.Context, pod *corev1.Pod, container string, args ...string) (string, error) {
	pids, err := c.ContainerPids(pod, container)
	if err != nil {
		return "", err
	}
	pid := strconv.Itoa(pids[0])
	// A copy on this machine: bind-mounting the file through /proc/PID/root
	// (another mount namespace's) leaves this machine's resolv.conf in force.
	conf, err := os.ReadFile("/proc/" + pid + "/root/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("pod %s/%s's resolv.conf: %w", pod.Namespace, pod.Name, err)
	}
	f, err := os.CreateTemp("", "t1route-resolv-*.conf")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(conf); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	script := `mount --bind ` + f.Name() + ` /etc/resolv.conf && exec nsenter --net=/proc/` + pid + `/ns/net -- "$@"`
	a := append([]string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"}, args...)
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in pod %s/%s (its resolv.conf): %w: %s", strings.Join(args, " "), pod.Namespace, pod.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
