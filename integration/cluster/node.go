//go:build linux

package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Node is one real node: a network namespace (its IP on the node
// segment), a UTS namespace (its host name is the node's name), a mount
// namespace in which the fixed paths of the kubelet, containerd and CNI
// (/var/lib/kubelet, /etc/cni/net.d, /opt/cni/bin, /run/containerd,
// /var/log/pods, …) are overlays of the host's over directories of its
// own, and containerd + runc, the kubelet and kube-proxy in all three. Like
// a node built from a Kubernetes node image, it has the loopback CNI plugin
// in /opt/cni/bin (containerd 1.6 needs it for every pod) and no network
// plugin: installing one (t1route) is what makes it Ready.
type Node struct {
	Name, NS, IP string
	Dir          string // everything of this node: overlays' upper layers, containerd's root and state
	Cgroup       string // the node's cgroup (under the cluster's); the kubelet's cgroupRoot
	Socket       string // containerd's CRI socket

	holder, containerd, kubelet, proxy *proc
	booted                             bool // started once: the registry's port in its namespace is open
}

// overlaid are the host directories each node sees as its own overlay.
var overlaid = []string{"/etc", "/opt", "/var/lib", "/var/log", "/run"}

// nsenter returns args to run a command in the node's network and mount
// namespaces.
func (n *Node) nsenter(args ...string) []string {
	return append([]string{"nsenter", "--target", strconv.Itoa(n.holder.cmd.Process.Pid), "--mount", "--net", "--uts", "--"}, args...)
}

// mountScript makes the node's mount namespace: a /sys that shows its
// network namespace, the cgroup hierarchies mounted again inside it, and
// the overlays. It then becomes the process that holds the namespace.
func (n *Node) mountScript(loopback string, hideOVS bool) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\nhostname %s\n", n.Name)
	// sysfs shows the network devices of the namespace that mounts it.
	b.WriteString("umount -l /sys\nmount -t sysfs sysfs /sys\nmount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup\n")
	hier, err := cgroupMountOptions()
	if err != nil {
		return "", err
	}
	for _, h := range hier {
		fmt.Fprintf(&b, "mkdir -p %s\nmount -t %s -o %s %s %s\n", h.path, h.fstype, h.opts, h.fstype, h.path)
	}
	for _, d := range overlaid {
		name := strings.ReplaceAll(strings.Trim(d, "/"), "/", "-")
		up, work := filepath.Join(n.Dir, "upper", name), filepath.Join(n.Dir, "work", name)
		fmt.Fprintf(&b, "mkdir -p %s %s\nmount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s\n", up, work, d, up, work, d)
	}
	fmt.Fprintf(&b, "mkdir -p /opt/cni/bin\ncp %s /opt/cni/bin/loopback\n", loopback)
	if hideOVS {
		// An empty, non-executable file over each program: running it fails.
		empty := filepath.Join(n.Dir, "no-ovs")
		fmt.Fprintf(&b, ": > %s\nchmod 0644 %s\n", empty, empty)
		for _, p := range hostOVSPrograms {
			fmt.Fprintf(&b, "if [ -e %s ]; then mount --bind %s %s; fi\n", p, empty, p)
		}
	}
	// cAdvisor in the kubelet (container stats, image filesystem) and crictl
	// look for containerd at its default address.
	fmt.Fprintf(&b, "mkdir -p /run/containerd\nln -sf %s /run/containerd/containerd.sock\n", n.Socket)
	fmt.Fprintf(&b, "touch %s\nexec sleep infinity\n", filepath.Join(n.Dir, "mounted"))
	return b.String(), nil
}

// hostOVSPrograms are Open vSwitch's programs as Debian installs them.
var hostOVSPrograms = []string{"/usr/bin/ovs-ofctl", "/usr/bin/ovs-vsctl", "/usr/bin/ovs-appctl", "/usr/bin/ovs-dpctl",
	"/usr/bin/ovsdb-client", "/usr/bin/ovsdb-tool", "/usr/sbin/ovsdb-server", "/usr/lib/openvswitch-switch/ovs-vswitchd"}

// startNode starts the node's namespace holder, containerd, the kubelet
// and kube-proxy.
func (c *Cluster) startNode(ctx context.Context, n *Node) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if err := makeCgroup(n.Cgroup); err != nil {
		return err
	}
	group := strings.TrimPrefix(n.Cgroup, c.state.Cgroup+"/")
	script, err := n.mountScript(filepath.Join(c.Dir, "cni-plugins", "loopback"), c.cfg.HideHostOVS)
	if err != nil {
		return err
	}
	if n.holder, err = c.start(n.Name+"-namespaces", group, "nsenter", "--net=/run/netns/"+n.NS, "--",
		"unshare", "--mount", "--uts", "--propagation", "slave", "--", "sh", "-c", script); err != nil {
		return err
	}
	if err := waitFor(ctx, 20*time.Second, n.Name+" mounts", func() (bool, error) {
		if done, log := n.holder.exited(); done {
			return false, fmt.Errorf("%s: making the mount namespace failed:\n%s", n.Name, log)
		}
		_, err := os.Stat(filepath.Join(n.Dir, "mounted"))
		return err == nil, nil
	}); err != nil {
		return err
	}

	// The registry is on this machine's loopback; containerd in the node
	// reaches it at the same address.
	if !n.booted {
		ln, err := listenInNetns(n.NS, c.Registry)
		if err != nil {
			return fmt.Errorf("%s: registry port: %w", n.Name, err)
		}
		c.fwd.serve(ln, func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", c.Registry)
		})
		n.booted = true
	}

	ctdConfig := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(ctdConfig, []byte(c.containerdConfig(n)), 0o644); err != nil {
		return err
	}
	if n.containerd, err = c.start(n.Name+"-containerd", group, n.nsenter("containerd", "--config", ctdConfig)...); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, n.Name+" containerd", func() (bool, error) {
		if done, log := n.containerd.exited(); done {
			return false, fmt.Errorf("%s: containerd exited:\n%s", n.Name, log)
		}
		conn, err := net.Dial("unix", n.Socket)
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	}); err != nil {
		return err
	}

	internal := fmt.Sprintf("https://%s:%d", ControlPlaneIP, APIServerPort)
	kubeconfig, err := c.pki.client("kubelet-"+n.Name, "system:node:"+n.Name, []string{"system:nodes"}, internal)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "resolv.conf"), []byte("# no upstream resolver on the node segment: pods resolve through the cluster DNS ("+DNSClusterIP+")\n"), 0o644); err != nil {
		return err
	}
	kubeletConfig := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(c.kubeletConfig(n)), 0o644); err != nil {
		return err
	}
	if n.kubelet, err = c.start(n.Name+"-kubelet", group, n.nsenter(filepath.Join(c.cfg.KubeBin, "kubelet"),
		"--config="+kubeletConfig, "--kubeconfig="+kubeconfig, "--hostname-override="+n.Name, "--node-ip="+n.IP, "--v=1")...); err != nil {
		return err
	}
	proxyConfig := filepath.Join(n.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(proxyConfig, []byte(fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the host's conntrack table size and timeouts alone (they are not per node here).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, c.proxyKubeconfig, ClusterCIDR, n.Name)), 0o644); err != nil {
		return err
	}
	n.proxy, err = c.start(n.Name+"-kube-proxy", group, n.nsenter(filepath.Join(c.cfg.KubeBin, "kube-proxy"), "--config="+proxyConfig, "--v=1")...)
	return err
}

func (c *Cluster) containerdConfig(n *Node) string {
	cri := `plugins."io.containerd.grpc.v1.cri"`
	level, format := "warn", "text"
	if c.cfg.ContainerdDebug {
		level, format = "debug", "json"
	}
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = %q
[debug]
  level = %[7]q
  format = %[8]q
[%[4]s]
  sandbox_image = %[5]q
  # The capability bounding set here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [%[4]s.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [%[4]s.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [%[4]s.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [%[4]s.cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
  [%[4]s.registry.mirrors.%[6]q]
    endpoint = ["http://%[6]s"]
`, filepath.Join(n.Dir, "containerd", "root"), filepath.Join(n.Dir, "containerd", "state"), n.Socket, cri, c.PauseImage, c.Registry, level, format)
}

func (c *Cluster) kubeletConfig(n *Node) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
# The host is cgroup v1 + unified; 1.35 refuses v1 unless told.
failCgroupV1: false
failSwapOn: false
# Chains in the node's own network namespace only, but none is needed.
makeIPTablesUtilChains: false
volumePluginDir: %q
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
serializeImagePulls: false
# A shared development machine: do not evict for its disk or memory.
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# The cluster's DNS (CoreDNS, the kube-dns Service). Pods with dnsPolicy Default get the node's
# resolv.conf: this machine's resolvers are not reachable from the node segment, so it names none.
clusterDNS: [%q]
clusterDomain: %s
resolvConf: %q
`, c.pki.CAFile, n.Socket, n.Cgroup, filepath.Join(n.Dir, "volume-plugins"), DNSClusterIP, ClusterDomain, filepath.Join(n.Dir, "resolv.conf"))
}
