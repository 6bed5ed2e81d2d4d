// Package agent is the node agent: it reads its node's podCIDRs from the
// Kubernetes API, keeps the OVS bridge, gateway and host routing (package
// ovs), installs the CNI plugin and its conflist, and keeps the bridge's
// flow table equal to the pods attached.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/ovs"
	"github.com/t1route/t1route/podroute/policy/rules"
)

// Config configures the node agent.
type Config struct {
	NodeName     string
	RunDir       string // OVS run directory (db.sock, <bridge>.mgmt)
	Bridge       string
	DatapathType string // "system" (kernel module) or "netdev" (userspace)
	GatewayPort  string
	MTU          int
	// CNI installation: the conflist is written to CNIConfDir and, unless
	// CNIPluginSource is empty, the plugin binary copied to CNIBinDir.
	CNIPluginSource, CNIBinDir, CNIConfDir string
	IPAMDataDir                            string
	// CNISocket is where the agent serves flow syncs to the CNI plugin
	// (default <RunDir>/t1route-cni.sock); the conflist names it.
	CNISocket string
	// FlowResync is how often the flow table is rebuilt even without change.
	FlowResync time.Duration
	// PolicyStatsInterval is how often the policy flows' packet counters
	// are read for the deny metrics (default 10 s).
	PolicyStatsInterval time.Duration
}

// Policy is the node's policy enforcement (package policy/enforcer): it
// writes the rules file the flow sync reads and says when it changed, and
// turns the policy flows' counters into metrics.
type Policy interface {
	Changes() <-chan struct{}
	ObserveFlowStats(counters map[uint64]rules.Counter, stats map[uint64]uint64)
}

// Defaults fills unset fields with production values.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.RunDir, ovs.DefaultRunDir)
	def(&c.Bridge, "br-int")
	def(&c.DatapathType, "system")
	def(&c.GatewayPort, "t1r-gw0")
	def(&c.CNIBinDir, "/opt/cni/bin")
	def(&c.CNIConfDir, "/etc/cni/net.d")
	def(&c.IPAMDataDir, "/var/lib/cni/networks")
	def(&c.CNISocket, filepath.Join(c.RunDir, CNISocketName))
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.FlowResync == 0 {
		c.FlowResync = 30 * time.Second
	}
	if c.PolicyStatsInterval == 0 {
		c.PolicyStatsInterval = 10 * time.Second
	}
}

// Agent keeps one node's datapath: bridge, gateway, host routing, CNI
// configuration and the flow table.
type Agent struct {
	cfg     Config
	metrics *Metrics
	kube    kubernetes.Interface
	log     *zap.Logger
	ready   atomic.Bool
	db      atomic.Pointer[ovs.OVSDB]
	policy  Policy
	// counters maps the installed policy flows' cookies to their policies
	// (the last flow sync's), for metrics and introspection.
	counters atomic.Pointer[map[uint64]rules.Counter]
	// What introspection shows (introspect.go); synced is signalled after every flow sync.
	mu     sync.Mutex
	st     syncState
	synced chan struct{}
}

// WithPolicy makes the agent rebuild the flow table when p's rules change
// and feed p the policy flows' counters. Call before Run.
func (a *Agent) WithPolicy(p Policy) *Agent {
	a.policy = p
	return a
}

// New returns an agent; Run starts it. metrics may be nil.
func New(cfg Config, kube kubernetes.Interface, log *zap.Logger, metrics *Metrics) *Agent {
	cfg.Defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Agent{cfg: cfg, kube: kube, log: log, metrics: metrics, synced: make(chan struct{}, 1)}
}

// Ready reports whether the datapath is set up, the flow table installed,
// and OVSDB connected (without it, OVS restarts go unrepaired).
func (a *Agent) Ready() bool {
	db := a.db.Load()
	return a.ready.Load() && db != nil && db.Connected()
}

// Run sets the node up and keeps its flow table until ctx ends. Pods keep
// forwarding when the agent stops: flows stay in OVS.
func (a *Agent) Run(ctx context.Context) error {
	cidrs, err := a.waitPodCIDRs(ctx)
	if err != nil {
		return err
	}
	gwAddrs := ovs.GatewayAddrs(cidrs)
	if len(gwAddrs) == 0 {
		return fmt.Errorf("node %s's podCIDRs %v are too small for a gateway and pods (/30 or /126 at most)", a.cfg.NodeName, cidrs)
	}
	a.setPodCIDRs(cidrs)
	a.log.Info("node podCIDRs", zap.Stringers("podCIDRs", cidrs), zap.String("bridge", a.cfg.Bridge),
		zap.String("datapathType", a.cfg.DatapathType))

	db, err := a.dialOVSDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	a.db.Store(db)
	if err := db.EnsureBridge(ctx, a.cfg.Bridge, a.cfg.DatapathType); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", a.cfg.Bridge, err)
	}
	var ips []string
	for _, g := range gwAddrs {
		ips = append(ips, g.Addr().String())
	}
	if err := db.EnsurePort(ctx, a.cfg.Bridge, a.cfg.GatewayPort, "internal",
		map[string]string{ovs.KeyGateway: "true", ovs.KeyIPs: strings.Join(ips, ",")}); err != nil {
		return fmt.Errorf("ensure gateway port: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = db.WaitOFPort(wctx, a.cfg.GatewayPort)
	cancel()
	if err != nil {
		return err
	}
	if err := retry(ctx, 10*time.Second, func() error { return ovs.ConfigureHost(a.cfg.GatewayPort, gwAddrs) }); err != nil {
		return err
	}
	table := ovs.OFCtl{RunDir: a.cfg.RunDir, Bridge: a.cfg.Bridge}
	// Listening before the conflist exists: the kubelet calls the plugin
	// only once the conflist is there, and the plugin calls this socket.
	if err := a.serveCNI(ctx, a.cfg.CNISocket, func(ctx context.Context) error {
		res, err := ovs.Sync(ctx, a.cfg.RunDir, a.cfg.Bridge, db, table)
		if err == nil && res.Policy != nil {
			c := res.Policy.Counters
			a.counters.Store(&c)
		}
		return err
	}); err != nil {
		return err
	}
	if err := a.installCNI(cidrs, gwAddrs); err != nil {
		return err
	}

	tick := time.NewTicker(a.cfg.FlowResync)
	defer tick.Stop()
	var policyChanges <-chan struct{}
	var stats <-chan time.Time
	if a.policy != nil {
		policyChanges = a.policy.Changes()
		t := time.NewTicker(a.cfg.PolicyStatsInterval)
		defer t.Stop()
		stats = t.C
	}
	var counters map[uint64]rules.Counter
	for {
		start := time.Now()
		res, err := ovs.Sync(ctx, a.cfg.RunDir, a.cfg.Bridge, db, table)
		a.metrics.SyncDuration.Observe(time.Since(start).Seconds())
		if ctx.Err() == nil {
			a.recordSync(ctx, table, start, res, err)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			a.metrics.SyncFailures.Inc()
			a.log.Warn("flow sync failed; retrying", zap.Error(err))
		case err == nil:
			a.metrics.Flows.Set(float64(res.Flows))
			a.metrics.Pods.Set(float64(res.Pods))
			if !a.ready.Swap(true) {
				a.log.Info("datapath ready", zap.Int("flows", res.Flows), zap.Int("pods", res.Pods))
			}
			if len(res.BadPorts) > 0 {
				a.log.Warn("pod ports with unreadable external_ids get no flows", zap.Strings("ports", res.BadPorts))
			}
			if res.PolicyError != nil {
				a.log.Warn("policy rules unreadable; installed without policy until the enforcer rewrites them", zap.Error(res.PolicyError))
			}
			if res.Policy != nil {
				counters = res.Policy.Counters
				c := counters // its own variable: counters is reassigned by later syncs
				a.counters.Store(&c)
			}
		}
		var retry <-chan time.Time // a failed sync is retried after a second
		if err != nil {
			retry = time.After(time.Second)
		}
	wait:
		select {
		case <-ctx.Done():
			return nil
		case <-db.Changes():
		case <-policyChanges:
		case <-tick.C:
		case <-retry:
		case <-stats:
			if s, err := table.PolicyStats(ctx); err == nil {
				a.policy.ObserveFlowStats(counters, s)
			}
			goto wait
		}
	}
}

// waitPodCIDRs polls the Node until the controller manager has given it a
// podCIDR (it cannot change afterwards).
func (a *Agent) waitPodCIDRs(ctx context.Context) ([]netip.Prefix, error) {
	if a.cfg.NodeName == "" {
		return nil, fmt.Errorf("node name is empty: set --node-name or NODE_NAME (the DaemonSet sets it from spec.nodeName)")
	}
	logged := false
	for {
		node, err := a.kube.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil {
			raw := node.Spec.PodCIDRs
			if len(raw) == 0 && node.Spec.PodCIDR != "" {
				raw = []string{node.Spec.PodCIDR}
			}
			var out []netip.Prefix
			for _, s := range raw {
				p, perr := netip.ParsePrefix(s)
				if perr != nil {
					return nil, fmt.Errorf("node %s has podCIDR %q: %w", a.cfg.NodeName, s, perr)
				}
				out = append(out, p.Masked())
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		if !logged {
			a.log.Info("waiting for the node's podCIDR", zap.String("node", a.cfg.NodeName), zap.Error(err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (a *Agent) dialOVSDB(ctx context.Context) (*ovs.OVSDB, error) {
	var db *ovs.OVSDB
	err := retry(ctx, 60*time.Second, func() error {
		var err error
		db, err = ovs.DialOVSDBPersistent(ctx, a.cfg.RunDir, zapr.NewLogger(a.log))
		return err
	})
	return db, err
}

// installCNI writes the conflist and, if a source is given, copies the
// plugin binary, both atomically (write then rename) so kubelet never reads
// half a file.
func (a *Agent) installCNI(cidrs, gwAddrs []netip.Prefix) error {
	if a.cfg.CNIPluginSource != "" {
		src, err := os.Open(a.cfg.CNIPluginSource)
		if err != nil {
			return fmt.Errorf("CNI plugin to install: %w", err)
		}
		defer src.Close()
		if err := writeAtomic(filepath.Join(a.cfg.CNIBinDir, PluginType), 0o755, func(w io.Writer) error {
			_, err := io.Copy(w, src)
			return err
		}); err != nil {
			return err
		}
	}
	conf, err := ConfList(a.cfg, cidrs, gwAddrs)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(a.cfg.CNIConfDir, ConfListFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(conf)
		return err
	})
}

// PluginType is the CNI plugin's binary name and "type".
const PluginType = "t1route-cni"

// ConfListFile is the conflist the agent writes; "10-" sorts it before
// most other networks.
const ConfListFile = "10-t1route.conflist"

// ConfList renders the node's CNI network configuration list.
func ConfList(cfg Config, cidrs, gwAddrs []netip.Prefix) ([]byte, error) {
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, g := range gwAddrs {
		ranges = append(ranges, []map[string]string{{"subnet": g.Masked().String(), "gateway": g.Addr().String()}})
		def := "0.0.0.0/0"
		if g.Addr().Is6() {
			def = "::/0"
		}
		routes = append(routes, map[string]string{"dst": def})
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "t1route",
		"plugins": []any{map[string]any{
			"type":                     PluginType,
			"bridge":                   cfg.Bridge,
			"gatewayPort":              cfg.GatewayPort,
			"ovsRunDir":                cfg.RunDir,
			"agentSocket":              cfg.CNISocket,
			"mtu":                      cfg.MTU,
			"disableTxChecksumOffload": cfg.DatapathType == "netdev",
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  ranges,
				"routes":  routes,
				"dataDir": cfg.IPAMDataDir,
			},
		}},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeAtomic(path string, mode os.FileMode, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// retry calls fn until it succeeds, ctx ends or limit passes.
func retry(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if wait < time.Second {
			wait *= 2
		}
	}
}

// policyCounters returns the installed policy flows' cookies and what they
// count (nil before the first sync with policies).
func (a *Agent) policyCounters() map[uint64]rules.Counter {
	if c := a.counters.Load(); c != nil {
		return *c
	}
	return nil
}
