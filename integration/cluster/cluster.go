//go:build linux

// Package cluster runs a local Kubernetes cluster of real components on
// one Linux machine (root), for `make cluster` and the end-to-end tests of
// the install path: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in a control plane network namespace; two nodes, each
// with containerd + runc, the kubelet and kube-proxy in a network
// namespace and a mount namespace of its own; a Tier-1 router namespace
// whose static routes nsxsim (the NSX Manager, outside the Tier-1)
// realizes; an external host; and an OCI registry on loopback from which
// the nodes pull images. Everything lives under one directory, one cgroup
// subtree and namespaces with one prefix, and Down (or Cleanup, from the
// saved State) removes all of it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/t1route/t1route/deploy/image/builder"
)

// Names the cluster gives to things users refer to.
const (
	Tier1       = "t1-routable"
	ClusterName = "t1route-cluster"
)

// Config says where and how to run a cluster.
type Config struct {
	Dir         string // the cluster's directory: everything it writes goes here (must hold no cluster)
	Root        string // the t1route repository (default: this source tree)
	KubeBin     string // kube-apiserver, etcd, kubelet, … (default: <Root>/.cache/bin, make kube-bins-cluster)
	Nodes       int    // default 2
	ImageLayout string // an OCI layout (make image's) whose images are pushed to the registry; optional
	// HideHostOVS makes this machine's Open vSwitch programs unusable inside
	// the nodes, as on a node that has none: then only Open vSwitch shipped
	// in an image can serve them (and t1route-cni, run by containerd on the
	// node, finds no ovs-ofctl).
	HideHostOVS bool
	// ContainerdDebug makes containerd log at debug level, as JSON: its
	// "begin cni setup" and "cni result" lines time each CNI ADD as the
	// kubelet has it run (SandboxTimings reads them).
	ContainerdDebug bool
	Logf            func(format string, args ...any)
}

// Cluster is a running cluster.
type Cluster struct {
	Dir        string
	APIServer  string // https://127.0.0.1:PORT, forwarded to the API server
	Kubeconfig string // admin (system:masters) for APIServer
	// InternalKubeconfig is the same admin's for the API server's own
	// address (198.51.100.2:6443), which the external host and the nodes
	// reach through the router, as an operator's workstation would.
	InternalKubeconfig string
	NSXEnv             string // NSXT_* and CLUSTER_* for t1route, as export lines
	Registry           string // 127.0.0.1:PORT, the same address on this machine and in every node
	PauseImage         string
	Images             map[string]string // by repository name ("t1route", "t1route-node"): references in Registry
	Client             kubernetes.Interface

	RouterNS, ControlPlaneNS, NSXNS, ExternalNS string
	Nodes                                       []*Node

	// Timings measured while starting.
	Timings []Timing

	cfg             Config
	state           *State
	pki             *pki
	binDir          string
	proxyKubeconfig string
	fwd             forwarder
	registry        *http.Server
	mu              sync.Mutex
	procs           []*proc
	api             *proc    // kube-apiserver (StopAPIServer, StartAPIServer)
	apiArgs         []string // how it was started
	downOnce        sync.Once
	downErr         error
}

// Timing is one measured phase.
type Timing struct {
	Phase string
	Took  time.Duration
}

// Up starts a cluster. On error everything started is removed again.
func Up(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if err := prerequisites(); err != nil {
		return nil, err
	}
	if cfg.Root == "" {
		_, file, _, _ := runtime.Caller(0)
		cfg.Root = filepath.Join(filepath.Dir(file), "..", "..")
	}
	if cfg.KubeBin == "" {
		cfg.KubeBin = filepath.Join(cfg.Root, ".cache", "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		if _, err := os.Stat(filepath.Join(cfg.KubeBin, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run make kube-bins-cluster (integration/tools/build.sh --cluster)", b, cfg.KubeBin)
		}
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 2
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if _, err := os.Stat(StateFile(cfg.Dir)); err == nil {
		return nil, fmt.Errorf("%s holds a cluster already: make cluster-down removes it", cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	b := make([]byte, 2)
	rand.Read(b) //nolint:errcheck
	prefix := "t1c" + hex.EncodeToString(b)
	c = &Cluster{Dir: cfg.Dir, cfg: cfg, binDir: filepath.Join(cfg.Dir, "bin"),
		state: &State{Dir: cfg.Dir, Prefix: prefix, Cgroup: "/t1route-" + prefix, HostPathsAbsent: absentHostPaths(), ChainsBefore: kubeChains()}}
	if err := c.state.save(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Down() //nolint:errcheck
			c = nil
		}
	}()
	for i := 0; i < cfg.Nodes; i++ {
		name := fmt.Sprintf("node-%c", 'a'+i)
		d := filepath.Join(cfg.Dir, "nodes", name)
		c.Nodes = append(c.Nodes, &Node{Name: name, NS: prefix + "-" + name, IP: NodeIP(i), Dir: d,
			Cgroup: c.state.Cgroup + "/" + name, Socket: filepath.Join(d, "containerd.sock")})
	}
	step := func(phase string, fn func() error) error {
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", phase, err)
		}
		c.Timings = append(c.Timings, Timing{phase, time.Since(start)})
		cfg.Logf("%s: %.1f s", phase, time.Since(start).Seconds())
		return nil
	}
	if err := step("cgroup", func() error { return makeCgroup(c.state.Cgroup) }); err != nil {
		return c, err
	}
	if err := step("build t1route, nsxsim, CNI plugins and CoreDNS", func() error {
		if err := builder.GoBuild(ctx, cfg.Root, c.binDir, nil, "./cmd/t1route", "./cmd/nsxsim"); err != nil {
			return err
		}
		if err := builder.GoBuild(ctx, cfg.Root, filepath.Join(cfg.Dir, "cni-plugins"), nil, cniPlugins...); err != nil {
			return err
		}
		return c.buildCoreDNS(ctx)
	}); err != nil {
		return c, err
	}
	if c.pki, err = newPKI(filepath.Join(cfg.Dir, "pki")); err != nil {
		return c, err
	}
	if err := step("network namespaces", c.buildNetwork); err != nil {
		return c, err
	}
	var dnsImage string
	if err := step("registry and images", func() error {
		if err := c.startRegistry(); err != nil {
			return err
		}
		if err := c.pushPause(ctx); err != nil {
			return err
		}
		var err error
		if dnsImage, err = c.pushCoreDNS(ctx); err != nil {
			return err
		}
		if cfg.ImageLayout != "" {
			var err error
			c.Images, err = c.pushLayout(ctx, cfg.ImageLayout)
			return err
		}
		return nil
	}); err != nil {
		return c, err
	}
	if err := step("control plane", func() error { return c.startControlPlane(ctx) }); err != nil {
		return c, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return c, err
	}
	if c.Client, err = kubernetes.NewForConfig(rc); err != nil {
		return c, err
	}
	if err := step("cluster DNS (CoreDNS as kube-dns, "+DNSClusterIP+")", func() error { return c.deployDNS(ctx, dnsImage) }); err != nil {
		return c, err
	}
	if err := step("NSX Manager (nsxsim) and external host", func() error {
		if err := c.startNSX(ctx); err != nil {
			return err
		}
		return c.startExternal()
	}); err != nil {
		return c, err
	}
	internal := fmt.Sprintf("https://%s:%d", ControlPlaneIP, APIServerPort)
	if c.proxyKubeconfig, err = c.pki.client("kube-proxy", "system:kube-proxy", nil, internal); err != nil {
		return c, err
	}
	if err := step("nodes started", func() error {
		for _, n := range c.Nodes {
			if err := c.startNode(ctx, n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return c, err
	}
	if err := step("nodes registered", func() error { return c.WaitNodes(ctx, 60*time.Second, false) }); err != nil {
		return c, err
	}
	return c, nil
}

func prerequisites() error {
	if os.Geteuid() != 0 {
		return errors.New("a cluster of real nodes needs root (network and mount namespaces, cgroups, containerd): run it as root")
	}
	var missing []string
	for _, b := range []string{"ip", "nsenter", "unshare", "containerd", "containerd-shim-runc-v2", "runc", "iptables", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not installed: %s (apt-get install -y containerd runc iproute2 iptables util-linux)", strings.Join(missing, ", "))
	}
	return nil
}

// WaitNodes waits until every node is registered, and Ready if ready is set.
func (c *Cluster) WaitNodes(ctx context.Context, timeout time.Duration, ready bool) error {
	what := "nodes registered"
	if ready {
		what = "nodes Ready"
	}
	var last string
	err := waitFor(ctx, timeout, what, func() (bool, error) {
		for _, n := range c.Nodes {
			if done, log := n.kubelet.exited(); done {
				return false, fmt.Errorf("the kubelet of %s exited:\n%s", n.Name, log)
			}
		}
		list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ok := 0
		var states []string
		for _, n := range list.Items {
			isReady := false
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					isReady = cond.Status == corev1.ConditionTrue
					if !isReady {
						states = append(states, n.Name+": "+cond.Message)
					}
				}
			}
			if !ready || isReady {
				ok++
			}
		}
		last = strings.Join(states, "; ")
		return ok == len(c.Nodes), nil
	})
	if err != nil && last != "" {
		err = fmt.Errorf("%w (%s)", err, last)
	}
	return err
}

// WriteEnv writes cluster.env (KUBECONFIG, registry and image references,
// namespaces) next to nsx.env and returns its path.
func (c *Cluster) WriteEnv() (string, error) {
	lines := []string{
		// kubectl (make kube-bins) and t1route, nsxsim built from this tree.
		"export PATH=" + c.binDir + ":" + c.cfg.KubeBin + ":$PATH",
		"export KUBECONFIG=" + c.Kubeconfig,
		// For kubectl or t1route check run on the external host (ip netns exec).
		"export T1ROUTE_EXTERNAL_KUBECONFIG=" + c.InternalKubeconfig,
		"export T1ROUTE_REGISTRY=" + c.Registry,
		"export T1ROUTE_ROUTER_NETNS=" + c.RouterNS,
		"export T1ROUTE_EXTERNAL_NETNS=" + c.ExternalNS,
	}
	var repos []string
	for r := range c.Images {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		lines = append(lines, "export "+strings.ToUpper(strings.ReplaceAll(r, "-", "_"))+"_IMAGE="+c.Images[r])
	}
	path := filepath.Join(c.Dir, "cluster.env")
	return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// Down stops everything and removes namespaces, cgroups and mounts; the
// directory stays (its owner removes it). Safe to call more than once.
func (c *Cluster) Down() error {
	c.downOnce.Do(func() { c.downErr = c.down() })
	return c.downErr
}

func (c *Cluster) down() error {
	grace := 10 * time.Second
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			// The kubelet first, so that it does not restart what goes next.
			for _, p := range []*proc{n.kubelet, n.proxy, n.containerd} {
				if p != nil {
					p.stop(grace)
				}
			}
			killCgroup(n.Cgroup, grace) //nolint:errcheck // Cleanup below reports what is left
		}(n)
	}
	wg.Wait()
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(grace)
	}
	c.fwd.close()
	if c.registry != nil {
		c.registry.Close()
	}
	return Cleanup(c.state)
}

// Cleanup removes what State records, whether or not the processes that
// made it still run: it kills every process in the cluster's cgroup
// subtree (mount namespaces and their mounts go with their last process),
// removes the cgroups and deletes the network namespaces. It leaves the
// directory. Idempotent.
func Cleanup(s *State) error {
	var errs []error
	if err := killCgroup(s.Cgroup, 20*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroup(s.Cgroup); err != nil {
		errs = append(errs, err)
	}
	for i := len(s.Netns) - 1; i >= 0; i-- {
		if _, err := os.Stat("/run/netns/" + s.Netns[i]); err == nil {
			if err := run("ip", "netns", "del", s.Netns[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the cluster still exists on this machine:
// network namespaces, processes, cgroups, mounts (in any mount namespace),
// iptables chains of Kubernetes in this namespace, and the fixed host
// paths that did not exist before. Empty after Cleanup.
func Leftovers(s *State) []string {
	var left []string
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, s.Prefix+"-") {
			left = append(left, "netns "+strings.Fields(line)[0])
		}
	}
	for _, pid := range cgroupPids(s.Cgroup) {
		left = append(left, fmt.Sprintf("process %d in cgroup %s", pid, s.Cgroup))
	}
	for _, cg := range cgroupExists(s.Cgroup) {
		left = append(left, "cgroup "+cg)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	seen := map[string]bool{}
	// Whoever asks, and the processes that started it (make cluster-down
	// and its shell name the directory too).
	asking := ancestors(os.Getpid())
	for _, p := range procs {
		if asking[filepath.Base(p)] {
			continue
		}
		if cmdline, err := os.ReadFile(p + "/cmdline"); err == nil && strings.Contains(string(cmdline), s.Dir) {
			left = append(left, fmt.Sprintf("process %s: %s", filepath.Base(p), strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
		mi, err := os.ReadFile(p + "/mountinfo")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, s.Dir) && !seen[line] {
				seen[line] = true
				left = append(left, fmt.Sprintf("mount (seen by pid %s): %s", filepath.Base(p), line))
			}
		}
	}
	before := map[string]bool{}
	for _, ch := range s.ChainsBefore {
		before[ch] = true
	}
	for _, ch := range kubeChains() {
		if !before[ch] {
			left = append(left, "iptables chain "+ch+" in this network namespace")
		}
	}
	for _, p := range s.HostPathsAbsent {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "host path "+p)
		}
	}
	return left
}

// kubeChains lists the iptables chains of Kubernetes and CNI plugins
// (KUBE-*, CNI-*) in this network namespace.
func kubeChains() []string {
	var chains []string
	save, _ := exec.Command("iptables-save").Output()
	for _, line := range strings.Split(string(save), "\n") {
		if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") {
			chains = append(chains, strings.Fields(line)[0][1:])
		}
	}
	return chains
}

// State is what Cleanup needs to remove this cluster.
func (c *Cluster) State() *State { return c.state }

// ancestors is pid and the chain of its parents, by /proc/PID/status.
func ancestors(pid int) map[string]bool {
	out := map[string]bool{}
	for pid > 1 && !out[fmt.Sprint(pid)] {
		out[fmt.Sprint(pid)] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			break
		}
		next := 0
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				fmt.Sscan(strings.TrimSpace(v), &next)
			}
		}
		pid = next
	}
	return out
}
