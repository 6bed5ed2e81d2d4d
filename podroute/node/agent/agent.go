// Package agent is the node agent: it reads its node's podCIDRs from the
// Kubernetes API, keeps the OVS bridge, gateway and host routing (package
// ovs), installs the CNI plugin and its conflist, and keeps the bridge's
// flow table equal to the pods attached, the policy rules and the service
// table; it also keeps the management guard's kernel chain (hostguard)
// and flushes the UDP conntrack entries of Service endpoints that went.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/node/neighbors"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/policy"

	"github.com/t1route/t1route/podroute/node/pipeline"
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
	// Portmap chains the portmap plugin (hostPort) after t1route-cni in the
	// conflist; installCNI sets it when it installs portmap.
	Portmap     bool
	IPAMDataDir string
	// CNISocket is where the agent serves flow syncs to the CNI plugin
	// (default <RunDir>/t1route-cni.sock); the conflist names it.
	CNISocket string
	// FlowResync is how often the flow table is rebuilt even without change.
	FlowResync time.Duration
	// PolicyStatsInterval is how often the policy flows' packet counters
	// are read for the deny metrics (default 10 s).
	PolicyStatsInterval time.Duration
	// Guard is the management-network guard the flow table enforces
	// without waiting for policy rules (failclosed.go).
	Guard pipeline.Guard
}

// Policy is the node's policy enforcement (package policy/enforcer): it
// writes the rules file the flow sync reads and says when it or the
// management guard changed, and turns the policy flows' counters into
// metrics.
type Policy interface {
	Changes() <-chan struct{}
	ObserveFlowStats(counters map[uint64]pipeline.Counter, stats map[uint64]uint64)
	// Guard is the management guard for the node's kernel (nil until known).
	Guard() *policy.GuardSpec
}

// Services is the node's service table (package proxy's Watcher).
type Services interface {
	// Table is nil until it is known: pods' connections to Services then
	// go to kube-proxy untranslated.
	Table() *pipeline.ServiceTable
	Changes() <-chan struct{}
}

// KernelGuard keeps the management guard's chain in one family's
// netfilter (package hostguard).
type KernelGuard interface {
	// Apply is idempotent.
	Apply(ctx context.Context, networks, allowed []netip.Prefix) error
	// IPv6 says which family: a node without IPv6 pods forwards none.
	IPv6() bool
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
	svc     Services
	guards  []KernelGuard // one per family
	ipv6    bool          // the node has IPv6 pods
	// counters maps the installed policy flows' cookies to their policies
	// (the last flow sync's), for metrics and introspection.
	counters atomic.Pointer[map[uint64]pipeline.Counter]
	// What introspection shows (introspect.go); synced is signalled after every flow sync.
	mu     sync.Mutex
	st     syncState
	synced chan struct{}
	// rulesOK: the last flow sync read the policy rules (failclosed.go).
	rulesOK atomic.Bool
	// cniInstalled: the conflist is written (only Run touches it).
	cniInstalled bool
	// active is closed once this agent serves the node (handover.go).
	active     chan struct{}
	activeOnce sync.Once
}

// WithPolicy makes the agent rebuild the flow table when p's rules change
// and feed p the policy flows' counters, and keep p's management guard in
// the kernel through guards (one per family). Call before Run.
func (a *Agent) WithPolicy(p Policy, guards ...KernelGuard) *Agent {
	a.policy, a.guards = p, guards
	return a
}

// WithServices makes the agent translate pods' connections to Services in
// the bridge, as s's table says. Call before Run.
func (a *Agent) WithServices(s Services) *Agent {
	a.svc = s
	return a
}

// services is the current service table (nil: none).
func (a *Agent) services() *pipeline.ServiceTable {
	if a.svc == nil {
		return nil
	}
	return a.svc.Table()
}

// New returns an agent; Run starts it. metrics may be nil.
func New(cfg Config, kube kubernetes.Interface, log *zap.Logger, metrics *Metrics) *Agent {
	cfg.Defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Agent{cfg: cfg, kube: kube, log: log, metrics: metrics, synced: make(chan struct{}, 1), active: make(chan struct{})}
}

// Ready reports whether the datapath is set up, the flow table installed
// with the policy enforcer's rules (failclosed.go), and OVSDB connected
// (without it, OVS restarts go unrepaired).
func (a *Agent) Ready() bool {
	db := a.db.Load()
	return a.ready.Load() && db != nil && db.Connected() && a.policyReady() && a.rulesOK.Load()
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
	for _, c := range cidrs {
		if c.Addr().Is6() {
			a.ipv6 = true
		}
	}
	a.log.Info("node podCIDRs", zap.Stringers("podCIDRs", cidrs), zap.String("bridge", a.cfg.Bridge),
		zap.String("datapathType", a.cfg.DatapathType))
	if err := a.waitPredecessor(ctx, cidrs); err != nil {
		return err
	}

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
		map[string]string{pipeline.KeyGateway: "true", pipeline.KeyIPs: strings.Join(ips, ",")}); err != nil {
		return fmt.Errorf("ensure gateway port: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = db.WaitOFPort(wctx, a.cfg.GatewayPort)
	cancel()
	if err != nil {
		return err
	}
	// The gateway keeps its MAC across ovs-vswitchd restarts: the flows
	// ovs.Daemons restores, and the node's neighbours, name it.
	if err := db.PinMAC(ctx, a.cfg.GatewayPort); err != nil {
		a.log.Warn("could not pin the gateway's MAC; a switch restart changes it until the next flow sync", zap.Error(err))
	}
	if err := retry(ctx, 10*time.Second, func() error { return ovs.ConfigureHost(a.cfg.GatewayPort, gwAddrs) }); err != nil {
		return err
	}
	// Save: a copy of each table for ovs.Daemons to restore if ovs-vswitchd restarts.
	table := ovs.OFCtl{RunDir: a.cfg.RunDir, Bridge: a.cfg.Bridge, Save: true}
	// Listening before the conflist exists: the kubelet calls the plugin
	// only once the conflist is there, and the plugin calls this socket.
	// Both wait for the policy enforcer (failclosed.go).
	if err := a.serveCNI(ctx, a.cfg.CNISocket, a.cniSync(table)); err != nil {
		return err
	}

	tick := time.NewTicker(a.cfg.FlowResync)
	defer tick.Stop()
	var policyChanges, serviceChanges <-chan struct{}
	var stats <-chan time.Time
	if a.svc != nil {
		serviceChanges = a.svc.Changes()
	}
	if a.policy != nil {
		policyChanges = a.policy.Changes()
		t := time.NewTicker(a.cfg.PolicyStatsInterval)
		defer t.Stop()
		stats = t.C
	}
	var counters map[uint64]pipeline.Counter
	var udpChecked *pipeline.ServiceTable // the service table whose stale UDP entries were flushed
	var guardApplied *policy.GuardSpec
	resync := true
	for {
		// A switch that stopped (an upgrade, a crash) removes its gateway
		// device; the new one has no addresses until they are set again.
		if err := ovs.ConfigureHost(a.cfg.GatewayPort, gwAddrs); err != nil && ctx.Err() == nil {
			a.log.Warn("could not configure the gateway link; retrying", zap.Error(err))
		}
		start := time.Now()
		res, err := pipeline.Sync(ctx, a.cfg.RunDir, a.cfg.Bridge, a.cfg.Guard, db, table, a.services())
		a.metrics.SyncDuration.Observe(time.Since(start).Seconds())
		a.afterSync(res, err)
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
			a.maybeInstallCNI(func() error { return a.installCNI(cidrs, gwAddrs) })
			a.keepNeighbors(ctx, neighbors.Link{Name: a.cfg.GatewayPort}, res.PodPorts, cidrs)
			if res.Policy != nil {
				counters = res.Policy.Counters
				c := counters // its own variable: counters is reassigned by later syncs
				a.counters.Store(&c)
			}
			if res.Services != nil && (udpChecked == nil || pipeline.UDPChanged(udpChecked, res.Services)) {
				// After the flows changed: a flushed client's next packet
				// picks a live endpoint.
				n, ferr := pipeline.FlushStaleUDP(ctx, ovs.Conntrack{RunDir: a.cfg.RunDir}, res.Services)
				if ferr != nil {
					a.log.Warn("flushing the UDP conntrack entries of Service endpoints that went", zap.Error(ferr))
				} else {
					udpChecked = res.Services
				}
				if n > 0 {
					a.log.Info("flushed UDP conntrack entries of Service endpoints that went", zap.Int("entries", n))
				}
			}
		}
		guardApplied = a.keepGuard(ctx, guardApplied, !resync)
		var retry <-chan time.Time // a failed sync is retried after a second
		if err != nil {
			retry = time.After(time.Second)
		}
		resync = false
	wait:
		select {
		case <-ctx.Done():
			return nil
		case <-db.Changes():
		case <-policyChanges:
		case <-serviceChanges:
		case <-tick.C:
			resync = true
		case <-retry:
		case <-stats:
			if s, err := table.FlowStats(ctx, pipeline.CookieTag, pipeline.CookieMask); err == nil {
				a.policy.ObserveFlowStats(counters, s)
			}
			goto wait
		}
	}
}

// keepNeighbors keeps the node's neighbour entries for its pods on the
// gateway permanent (package neighbors says why: a switch restart must not
// cost traffic from outside the node a second of neighbour resolution).
func (a *Agent) keepNeighbors(ctx context.Context, t neighbors.Table, pods []pipeline.PodPort, cidrs []netip.Prefix) {
	set, deleted, err := neighbors.Sync(ctx, t, pods, cidrs)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("could not keep the pods' neighbour entries on the gateway; after a switch restart traffic from outside the node waits for neighbour resolution",
			zap.Error(err))
	}
	if set+deleted > 0 {
		a.log.Debug("gateway neighbour entries", zap.Int("set", set), zap.Int("deleted", deleted))
	}
}

// keepGuard applies the policy's management guard to the kernel when it
// changed since applied (the guard last applied, nil: none yet), or when
// recheck is false (at a resync: FORWARD's order is checked again, in case
// kube-proxy put its rules first). It returns the guard now applied. Until
// the guard is known the chain keeps what it had (fail closed across agent
// restarts).
func (a *Agent) keepGuard(ctx context.Context, applied *policy.GuardSpec, skipUnchanged bool) *policy.GuardSpec {
	if a.policy == nil || len(a.guards) == 0 {
		return applied
	}
	g := a.policy.Guard()
	if g == nil {
		return applied
	}
	if skipUnchanged && applied != nil && slices.Equal(applied.Networks, g.Networks) && slices.Equal(applied.Allowed, g.Allowed) {
		return applied
	}
	var errs []error
	for _, kg := range a.guards {
		if kg.IPv6() && !a.ipv6 {
			continue
		}
		if err := kg.Apply(ctx, g.Networks, g.Allowed); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Error("management guard not kept in the kernel: traffic kube-proxy translates to the management network is not dropped", zap.Error(err))
		a.setGuardError(err)
		return applied
	}
	a.setGuardError(nil)
	if applied == nil || !slices.Equal(applied.Networks, g.Networks) || !slices.Equal(applied.Allowed, g.Allowed) {
		a.log.Info("management guard kept in the kernel", zap.Stringers("networks", g.Networks), zap.Int("exemptPrefixes", len(g.Allowed)))
	}
	return g
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
//
// The portmap plugin (hostPort), when the plugin source's directory holds
// it (the node image does), is installed too and chained after t1route-cni.
func (a *Agent) installCNI(cidrs, gwAddrs []netip.Prefix) error {
	cfg := a.cfg
	if cfg.CNIPluginSource != "" {
		if err := installBinary(cfg.CNIPluginSource, filepath.Join(cfg.CNIBinDir, PluginType)); err != nil {
			return fmt.Errorf("CNI plugin to install: %w", err)
		}
		pm := filepath.Join(filepath.Dir(cfg.CNIPluginSource), PortmapType)
		if _, err := os.Stat(pm); err == nil {
			if err := installBinary(pm, filepath.Join(cfg.CNIBinDir, PortmapType)); err != nil {
				return fmt.Errorf("CNI portmap plugin to install: %w", err)
			}
			cfg.Portmap = true
		}
	}
	conf, err := ConfList(cfg, cidrs, gwAddrs)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(a.cfg.CNIConfDir, ConfListFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(conf)
		return err
	})
}

// installBinary copies an executable to dst atomically.
func installBinary(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeAtomic(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// PortmapType is the reference CNI plugin (containernetworking/plugins)
// chained after t1route-cni for hostPort: it DNATs the node's port to the
// pod in the node's iptables, as on every CNI that chains it.
const PortmapType = "portmap"

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
	plugins := []any{map[string]any{
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
	}}
	if cfg.Portmap {
		plugins = append(plugins, map[string]any{"type": PortmapType, "capabilities": map[string]bool{"portMappings": true}})
	}
	conf := map[string]any{"cniVersion": "1.0.0", "name": "t1route", "plugins": plugins}
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

// retry calls fn until it succeeds, ctx ends or limit passes: every 50 ms
// for the first 2 s (a handover waits for the new pod's Open vSwitch, which
// starts within a fraction of a second), then backing off to every second.
func retry(ctx context.Context, limit time.Duration, fn func() error) error {
	start := time.Now()
	deadline := start.Add(limit)
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
		if wait < time.Second && time.Since(start) > 2*time.Second {
			wait *= 2
		}
	}
}

// policyCounters returns the installed policy flows' cookies and what they
// count (nil before the first sync with policies).
func (a *Agent) policyCounters() map[uint64]pipeline.Counter {
	if c := a.counters.Load(); c != nil {
		return *c
	}
	return nil
}
