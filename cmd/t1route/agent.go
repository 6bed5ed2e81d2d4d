package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/node/agent"
	"github.com/t1route/t1route/podroute/node/hostguard"
	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/policy/enforcer"
	"github.com/t1route/t1route/podroute/node/proxy"
	"github.com/t1route/t1route/podroute/version"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

type agentFlags struct {
	kubeconfig, healthAddr, logFormat, logLevel string
	cfg                                         agent.Config
	networkPolicy, logDenied, services          bool
	intro                                       agent.IntrospectionConfig
	publish                                     bool
	managementCIDRs                             string
}

func newAgentCommand(stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node datapath: OVS bridge, gateway, pod flows, CNI install (one per node)",
		Long: `agent sets up this node's datapath: an OVS bridge with a gateway port holding the
first address of the node's podCIDR, IPv4 forwarding, the t1route CNI plugin and
its conflist, and the bridge's flow table, rebuilt from OVSDB whenever a port
changes. Pod traffic is routed by the node without NAT. Run it on every node
(hostNetwork, privileged) next to Open vSwitch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.cfg.NodeName == "" {
				f.cfg.NodeName, _ = getenv("NODE_NAME")
			}
			if f.cfg.DatapathType != "system" && f.cfg.DatapathType != "netdev" {
				return fmt.Errorf("--datapath-type %q: use system (kernel module) or netdev (userspace)", f.cfg.DatapathType)
			}
			if f.managementCIDRs == "" {
				f.managementCIDRs, _ = getenv("NSXT_MANAGEMENT_CIDR")
			}
			cidrs, err := parseManagementCIDRs(f.managementCIDRs)
			if err != nil {
				return usageError{err}
			}
			f.cfg.Guard.CIDRs = cidrs
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, f, stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG)")
	fl.StringVar(&f.cfg.NodeName, "node-name", "", "this node's name (default: $NODE_NAME)")
	fl.StringVar(&f.cfg.RunDir, "ovs-run-dir", ovs.DefaultRunDir, "Open vSwitch run directory (db.sock, <bridge>.mgmt)")
	fl.StringVar(&f.cfg.Bridge, "bridge", "br-int", "OVS bridge for pods")
	fl.StringVar(&f.cfg.DatapathType, "datapath-type", "system", "system (kernel module) or netdev (userspace datapath)")
	fl.StringVar(&f.cfg.GatewayPort, "gateway-port", "t1r-gw0", "name of the gateway internal port")
	fl.IntVar(&f.cfg.MTU, "mtu", 1500, "pod interface MTU")
	fl.StringVar(&f.cfg.CNIPluginSource, "cni-plugin", defaultCNIPlugin(), "t1route-cni binary to install on the node (empty: do not install)")
	fl.StringVar(&f.cfg.CNIBinDir, "cni-bin-dir", "/opt/cni/bin", "where kubelet looks for CNI plugins")
	fl.StringVar(&f.cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "where kubelet looks for CNI configuration")
	fl.StringVar(&f.cfg.IPAMDataDir, "ipam-data-dir", "/var/lib/cni/networks", "host-local IPAM reservations")
	fl.DurationVar(&f.cfg.FlowResync, "flow-resync", 30*time.Second, "rebuild the flow table at least this often")
	fl.BoolVar(&f.networkPolicy, "network-policy", true, "enforce NetworkPolicy and ClusterNetworkPolicy (and the management guard, also in the node's kernel)")
	fl.StringVar(&f.managementCIDRs, "management-cidr", "", "the management network pods may not reach, comma-separated CIDRs, enforced from the agent's start without waiting for policies (default: $NSXT_MANAGEMENT_CIDR; the guard's ClusterNetworkPolicies exempt their pods)")
	fl.BoolVar(&f.services, "services", true, "translate pods' connections to Service IPs in the bridge, before policy (kube-proxy keeps the rest)")
	fl.BoolVar(&f.logDenied, "log-denied", false, "log, per policy and direction at most every 10 s, the packets it denied")
	fl.DurationVar(&f.cfg.PolicyStatsInterval, "policy-stats-interval", 10*time.Second, "how often denied-packet counts are read from OVS")
	fl.StringVar(&f.healthAddr, "health-bind-address", "127.0.0.1:8081", "address of /healthz, /readyz and /metrics: plain HTTP without authentication, so loopback by default (the agent uses the host network; the kubelet probes 127.0.0.1)")
	fl.StringVar(&f.intro.Socket, "introspect-socket", introspect.DefaultSocket, "unix socket on which `t1route get` asks this agent (root only)")
	fl.BoolVar(&f.publish, "publish-summary", true, "publish this node's T1RouteAgentInfo (kubectl get t1routeagentinfos)")
	fl.DurationVar(&f.intro.MinInterval, "summary-min-interval", introspect.DefaultMinInterval, "at most one summary write per this interval")
	fl.DurationVar(&f.intro.Heartbeat, "summary-heartbeat", introspect.DefaultHeartbeat, "rewrite an unchanged summary this often")
	fl.StringVar(&f.logFormat, "log-format", "json", "json or console")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// parseManagementCIDRs reads NSXT_MANAGEMENT_CIDR's syntax (the controller
// validates the same value fully).
func parseManagementCIDRs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--management-cidr (NSXT_MANAGEMENT_CIDR) %q is not a CIDR", s)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("--management-cidr (NSXT_MANAGEMENT_CIDR) %q is every address: give the management network itself", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// defaultCNIPlugin is t1route-cni next to this binary, if it is there.
func defaultCNIPlugin() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), agent.PluginType)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func runAgent(ctx context.Context, f agentFlags, stderr io.Writer) error {
	log, err := daemon.NewLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	rc, err := connect.KubeConfig(f.kubeconfig, userAgent())
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	reg := daemon.NewRegistry()
	a := agent.New(f.cfg, kube, log, agent.NewMetrics(reg))
	if f.networkPolicy {
		rc, err := connect.KubeConfig(f.kubeconfig, userAgent())
		if err != nil {
			return err
		}
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return err
		}
		runDir := f.cfg.RunDir
		if runDir == "" {
			runDir = ovs.DefaultRunDir
		}
		e := enforcer.New(enforcer.Config{NodeName: f.cfg.NodeName, RulesFile: pipeline.PolicyFile(runDir), LogDenied: f.logDenied},
			kube, dyn, log.Named("policy"), enforcer.NewMetrics(reg))
		a.WithPolicy(e, hostguard.IPTables{}, hostguard.IPTables{V6: true})
		go func() {
			if err := e.Run(ctx); err != nil {
				log.Error("network policy enforcement stopped", zap.Error(err))
			}
		}()
	}
	if f.services {
		w := proxy.NewWatcher(kube, f.cfg.NodeName, 0, log.Named("services"))
		a.WithServices(w)
		go func() {
			if err := w.Run(ctx); err != nil {
				log.Error("service translation stopped: pods' Service connections go to kube-proxy untranslated", zap.Error(err))
			}
		}()
	}
	ready := func() error {
		if !a.Ready() {
			return errors.New("the datapath is not set up yet, or network policy enforcement has not installed its rules")
		}
		return nil
	}
	srv, err := daemon.ServeHealth(f.healthAddr, reg, ready, log)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		// Another agent of this node holds the port: the old pod of a surge
		// upgrade, which answers the probes until it stops (agent/handover.go).
		log.Info("health port in use by another agent on this node; serving it once that one stops", zap.String("address", f.healthAddr))
		go func() {
			for ctx.Err() == nil {
				if s, err := daemon.ServeHealth(f.healthAddr, reg, ready, log); err == nil {
					go func() { <-ctx.Done(); s.Close() }()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	case err != nil:
		return fmt.Errorf("--health-bind-address: %w", err)
	default:
		defer srv.Close()
	}
	f.intro.Version = version.Version
	if f.publish {
		if f.intro.Dynamic, err = dynamic.NewForConfig(rc); err != nil {
			return err
		}
	}
	go func() {
		select { // a standing-by agent publishes nothing about the node
		case <-a.Active():
		case <-ctx.Done():
			return
		}
		if err := a.ServeIntrospection(ctx, f.intro); err != nil {
			log.Error("introspection unavailable (forwarding is not affected)", zap.Error(err))
		}
	}()
	log.Info("starting agent", zap.String("node", f.cfg.NodeName))
	return a.Run(ctx)
}
