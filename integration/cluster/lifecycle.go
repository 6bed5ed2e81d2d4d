//go:build linux

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The failures a node's day can bring, for tests of what survives them:
// a node reboot, the API server away, NSX Manager unreachable.

// Reboot simulates a node's reboot: every process of the node ends at once
// (the kubelet, containerd, every pod and container, the namespace holder:
// mounts and the pods' network namespaces go with it, and their veths with
// those), what a reboot clears is cleared (/run, the node's tmpfs: the OVS
// run directory with its sockets, saved flows and t1route's policy rules,
// and containerd's state; the network namespace's links other than eth0,
// its iptables rules and sysctls), and the node starts again from what
// persists on its disk (/etc, /opt, /var/lib: the OVS database, the CNI
// configuration and plugin, IPAM reservations, the kubelet's and
// containerd's data). It returns once containerd, the kubelet and
// kube-proxy run again; the kubelet then restarts the node's pods.
func (c *Cluster) Reboot(ctx context.Context, n *Node) error {
	for _, p := range []*proc{n.kubelet, n.proxy, n.containerd} {
		if p != nil {
			p.stop(0) // SIGTERM, then at once SIGKILL: the power goes
		}
	}
	if err := killCgroup(n.Cgroup, 20*time.Second); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if n.holder != nil {
		<-n.holder.done
	}
	// tmpfs: /run of the node (its overlay's upper layer) and containerd's state.
	for _, dir := range []string{filepath.Join(n.Dir, "upper", "run"), filepath.Join(n.Dir, "work", "run"), filepath.Join(n.Dir, "containerd", "state")} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("%s: clear %s: %w", n.Name, dir, err)
		}
	}
	if err := os.Remove(filepath.Join(n.Dir, "mounted")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := resetNetns(n.NS); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := c.startNode(ctx, n); err != nil {
		return fmt.Errorf("%s: start after the reboot: %w", n.Name, err)
	}
	return nil
}

// resetNetns gives a node's network namespace back what it had at boot:
// loopback and eth0 (its address and default route: the machine's
// configuration), no other link (an OVS tap the switch made persistent
// would otherwise outlive the reboot), no iptables rules, forwarding off.
func resetNetns(ns string) error {
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show").Output()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == "lo" || name == "eth0" {
			continue
		}
		if err := run("ip", "-n", ns, "link", "del", name); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			return err
		}
	}
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		for _, op := range []string{"-F", "-X"} {
			if err := run("ip", "netns", "exec", ns, "iptables", "-t", table, op); err != nil {
				return err
			}
		}
	}
	return run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
}

// StopAPIServer stops kube-apiserver (etcd and everything else keep
// running): the control plane is away until StartAPIServer.
func (c *Cluster) StopAPIServer() {
	c.api.stop(10 * time.Second)
}

// StartAPIServer starts kube-apiserver again as it was started, and waits
// until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	api, err := c.start("kube-apiserver", "control-plane", c.apiArgs...)
	if err != nil {
		return err
	}
	c.api = api
	return c.waitAPIServer(ctx, api)
}

// SetNSXReachable takes NSX Manager off the network (false: its link to
// the router goes down, so every request to it fails as if it had lost
// power, while what it realized on the Tier-1 stays) or puts it back.
func (c *Cluster) SetNSXReachable(reachable bool) error {
	state := "down"
	if reachable {
		state = "up"
	}
	return run("ip", "-n", c.RouterNS, "link", "set", "r-nsx", state)
}

// PushImages pushes every image of an OCI layout to the cluster's registry,
// as Up pushes Config.ImageLayout's, and returns their references by
// repository name.
func (c *Cluster) PushImages(ctx context.Context, layout string) (map[string]string, error) {
	return c.pushLayout(ctx, layout)
}
