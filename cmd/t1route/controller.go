package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/guard"
)

type controllerFlags struct {
	kubeconfig     string
	resync         time.Duration
	window         time.Duration
	metricsAddr    string
	metricsSecure  bool
	metricsCertDir string
	leaderElect    bool
	leaseNamespace string
	leaseName      string
	leaseDuration  time.Duration
	logFormat      string
	logLevel       string
	nsxRate        float64
	nsxInFlight    int
	nsxBatch       int
	maxRoutes      int
	adopt          bool
}

func newControllerCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Keep the Tier-1's static routes equal to the nodes' podCIDRs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd, getenv, stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runController(ctx, cfg, f, stderr, getenv)
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	fl.DurationVar(&f.resync, "resync-period", 5*time.Minute, "re-list NSX this often to repair drift")
	fl.DurationVar(&f.window, "batch-window", 100*time.Millisecond, "coalesce node changes over this window")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of /metrics, /healthz and /readyz")
	fl.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve HTTPS, and /metrics only to bearer tokens the API server authenticates (TokenReview) and authorizes to get /metrics (SubjectAccessReview; ClusterRole t1route-metrics-reader); /healthz and /readyz stay open. false: plain HTTP, no authentication (local runs)")
	fl.StringVar(&f.metricsCertDir, "metrics-cert-dir", "", "directory with the HTTPS serving certificate (tls.crt, tls.key; read at each connection, so renewals need no restart); empty: a self-signed certificate made at start")
	fl.BoolVar(&f.leaderElect, "leader-elect", true, "run only while holding the leader Lease (run 2 replicas)")
	fl.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: $POD_NAMESPACE, else kube-system)")
	fl.StringVar(&f.leaseName, "leader-election-name", "t1route-controller", "name of the Lease")
	fl.DurationVar(&f.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a lease lasts without renewal")
	fl.StringVar(&f.logFormat, "log-format", "json", "json or console")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.Float64Var(&f.nsxRate, "nsx-rate-limit", 50, "NSX requests per second (NSX allows 100 per client)")
	fl.IntVar(&f.nsxInFlight, "nsx-max-in-flight", 10, "concurrent NSX requests (NSX allows 40 per client)")
	fl.IntVar(&f.nsxBatch, "nsx-batch-size", 1000, "routes per hierarchical API call")
	fl.BoolVar(&f.adopt, "adopt-cloud-provider-routes", false, "take over the vSphere cloud provider's routes of this cluster (tag vsphere.k8s.io/cluster-name = CLUSTER_NAME), swapping each atomically for t1route's")
	fl.IntVar(&f.maxRoutes, "max-routes", 0, "most routes this cluster may create on the Tier-1 (from NSX's configuration maximums for your version); 0: no check")
	return cmd
}

func runController(ctx context.Context, cfg config.Config, f controllerFlags, stderr io.Writer, getenv func(string) (string, bool)) error {
	log, err := daemon.NewLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck

	reg := daemon.NewRegistry()
	metrics := podroute.NewMetrics(reg)
	var ready atomic.Bool
	var credentials atomic.Pointer[func() error] // set once NSX is connected
	readyz := func() error {
		if !ready.Load() {
			return errors.New("no reconcile pass has completed yet")
		}
		if fn := credentials.Load(); fn != nil {
			if err := (*fn)(); err != nil {
				// Secret credentials not (or no longer) readable: the
				// controller cannot reach NSX, so it must not look ready.
				return fmt.Errorf("NSX credentials unavailable: %w", err)
			}
		}
		return nil
	}
	var rc *rest.Config
	var srv *http.Server
	if f.metricsSecure {
		// The controller runs on the host network: its port is open on
		// every node interface, so /metrics is for authorized tokens only.
		if rc, err = connect.KubeConfig(f.kubeconfig, userAgent()); err != nil {
			return fmt.Errorf("--metrics-secure checks /metrics tokens with the API server: %w (--metrics-secure=false serves plain HTTP without authentication, for local runs)", err)
		}
		reviews, err := kubernetes.NewForConfig(reviewConfig(rc))
		if err != nil {
			return err
		}
		tlsConfig, err := daemon.ServingTLS(f.metricsCertDir, "t1route-controller")
		if err != nil {
			return fmt.Errorf("--metrics-cert-dir: %w", err)
		}
		srv, err = daemon.ServeHealthTLS(f.metricsAddr, reg, readyz, tlsConfig, daemon.NewKubeAuth(reviews, log.Named("metrics")), log)
		if err != nil {
			return fmt.Errorf("--metrics-bind-address: %w", err)
		}
	} else if srv, err = daemon.ServeHealth(f.metricsAddr, reg, readyz, log); err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	defer srv.Shutdown(context.Background()) //nolint:errcheck

	if !cfg.PodRoutingEnabled {
		log.Info("pod routing is disabled (NSXT_POD_ROUTING_ENABLED is not true): the controller idles and changes nothing")
		ready.Store(true)
		<-ctx.Done()
		return nil
	}
	if rc == nil {
		if rc, err = connect.KubeConfig(f.kubeconfig, userAgent()); err != nil {
			return err
		}
	}
	clients, err := connect.NewControllerClients(rc, cfg.NodeStatusQPS)
	if err != nil {
		return err
	}
	kube := clients.Kube
	uid, err := podroute.WaitClusterUID(ctx, kube, log)
	if err != nil {
		return err
	}
	conn, err := connect.NSX(ctx, cfg, kube, connect.Options{Limits: nsx.Limits{RateLimit: f.nsxRate, MaxInFlight: f.nsxInFlight},
		BatchSize: f.nsxBatch, Log: log, Observe: func(op string, status, _ int, d time.Duration) {
			metrics.NSXCalls.WithLabelValues(op, fmt.Sprint(status)).Inc()
			metrics.NSXCallDuration.WithLabelValues(op).Observe(d.Seconds())
		}})
	if err != nil {
		return err
	}
	credentialsReady := conn.Ready
	credentials.Store(&credentialsReady)
	opts := podroute.RunOptions{
		Config: podroute.Config{Identity: podroute.Identity{UID: uid, Name: cfg.ClusterName}, Router: cfg.RouterPath,
			ClusterCIDRs: cfg.ClusterCIDRs, ResyncPeriod: f.resync, Window: f.window, MaxRoutes: f.maxRoutes,
			AdoptCloudProviderRoutes: f.adopt},
		NodeStatus: clients.NodeStatus, Metrics: metrics, Log: log, OnReady: func() { ready.Store(true) },
	}
	// The install's namespace names its guard policies (render.GuardOwner),
	// as its RBAC grants them.
	ns, _ := getenv("POD_NAMESPACE")
	if opts.WhileLeading, err = guard.ForController(rc, render.GuardOwner(ns), cfg.Guard, metrics.GuardSynced, log.Named("guard")); err != nil {
		return err
	}
	if f.leaderElect {
		opts.LeaderElection = daemon.Lease(getenv, f.leaseNamespace, f.leaseName, f.leaseDuration)
		// A standby replica is ready: it is healthy and waiting for the lease.
		ready.Store(true)
	}
	if err := podroute.RunUntilDone(ctx, kube, conn.Client, opts); err != nil {
		return err
	}
	log.Info("shut down cleanly")
	return nil
}

// reviewConfig is the client of /metrics' token and access reviews: its own
// rate limit, so that requests with bad tokens never slow the controller's
// own API calls.
func reviewConfig(rc *rest.Config) *rest.Config {
	c := rest.CopyConfig(rc)
	c.QPS, c.Burst = 5, 10
	return c
}
