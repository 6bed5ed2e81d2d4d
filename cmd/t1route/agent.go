package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/agent"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/introspect"
	"github.com/t1route/t1route/podroute/ovs"
	"github.com/t1route/t1route/podroute/policy/enforcer"
)

type agentFlags struct {
	kubeconfig, healthAddr, logFormat, logLevel string
	cfg                                         agent.Config
	networkPolicy, logDenied                    bool
	intro                                       agent.IntrospectionConfig
	publish                                     bool
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
	fl.BoolVar(&f.networkPolicy, "network-policy", true, "enforce NetworkPolicy and ClusterNetworkPolicy")
	fl.BoolVar(&f.logDenied, "log-denied", false, "log, per policy and direction at most every 10 s, the packets it denied")
	fl.DurationVar(&f.cfg.PolicyStatsInterval, "policy-stats-interval", 10*time.Second, "how often denied-packet counts are read from OVS")
	fl.StringVar(&f.healthAddr, "health-bind-address", ":8081", "address of /healthz, /readyz and /metrics")
	fl.StringVar(&f.intro.Socket, "introspect-socket", introspect.DefaultSocket, "unix socket on which `t1route get` asks this agent (root only)")
	fl.BoolVar(&f.publish, "publish-summary", true, "publish this node's T1RouteAgentInfo (kubectl get t1routeagentinfos)")
	fl.DurationVar(&f.intro.MinInterval, "summary-min-interval", introspect.DefaultMinInterval, "at most one summary write per this interval")
	fl.DurationVar(&f.intro.Heartbeat, "summary-heartbeat", introspect.DefaultHeartbeat, "rewrite an unchanged summary this often")
	fl.StringVar(&f.logFormat, "log-format", "json", "json or console")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
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
		e := enforcer.New(enforcer.Config{NodeName: f.cfg.NodeName, RulesFile: ovs.PolicyFile(runDir), LogDenied: f.logDenied},
			kube, dyn, log.Named("policy"), enforcer.NewMetrics(reg))
		a.WithPolicy(e)
		go func() {
			if err := e.Run(ctx); err != nil {
				log.Error("network policy enforcement stopped", zap.Error(err))
			}
		}()
	}
	srv, err := daemon.ServeHealth(f.healthAddr, reg, func() error {
		if !a.Ready() {
			return errors.New("the datapath is not set up yet")
		}
		return nil
	}, log)
	if err != nil {
		return fmt.Errorf("--health-bind-address: %w", err)
	}
	defer srv.Close()
	f.intro.Version = version
	if f.publish {
		if f.intro.Dynamic, err = dynamic.NewForConfig(rc); err != nil {
			return err
		}
	}
	go func() {
		if err := a.ServeIntrospection(ctx, f.intro); err != nil {
			log.Error("introspection unavailable (forwarding is not affected)", zap.Error(err))
		}
	}()
	log.Info("starting agent", zap.String("node", f.cfg.NodeName))
	return a.Run(ctx)
}
