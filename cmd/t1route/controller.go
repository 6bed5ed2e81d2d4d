package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
)

type controllerFlags struct {
	kubeconfig     string
	resync         time.Duration
	window         time.Duration
	metricsAddr    string
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
	level, err := zapcore.ParseLevel(f.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log, err := newLogger(stderr, f.logFormat, level)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))
	nsx.RouteSDKLogs(log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := podroute.NewMetrics(reg)
	var ready atomic.Bool
	var credentials atomic.Pointer[func() error] // set once NSX is connected
	srv, err := serveMetrics(f.metricsAddr, reg, func() error {
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
	}, log)
	if err != nil {
		return err
	}
	defer srv.Shutdown(context.Background()) //nolint:errcheck

	if !cfg.PodRoutingEnabled {
		log.Info("pod routing is disabled (NSXT_POD_ROUTING_ENABLED is not true): the controller idles and changes nothing")
		ready.Store(true)
		<-ctx.Done()
		return nil
	}
	rc, err := connect.KubeConfig(f.kubeconfig, userAgent())
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	uid, err := podroute.ClusterUID(ctx, kube)
	if err != nil {
		return err
	}
	limits := nsx.Limits{RateLimit: f.nsxRate, MaxInFlight: f.nsxInFlight}
	conn, err := connect.NSX(ctx, cfg, kube, connect.Options{Limits: limits, BatchSize: f.nsxBatch, Log: log,
		Observe: func(op string, status, _ int, d time.Duration) {
			metrics.NSXCalls.WithLabelValues(op, fmt.Sprint(status)).Inc()
			metrics.NSXCallDuration.WithLabelValues(op).Observe(d.Seconds())
		}})
	if err != nil {
		return err
	}
	credentialsReady := conn.Ready
	credentials.Store(&credentialsReady)
	opts := podroute.RunOptions{
		Config: podroute.Config{Identity: podroute.Identity{UID: uid, Name: cfg.ClusterName}, Tier1Path: cfg.RouterPath,
			ClusterCIDRs: cfg.ClusterCIDRs, ResyncPeriod: f.resync, Window: f.window, MaxRoutes: f.maxRoutes,
			AdoptCloudProviderRoutes: f.adopt},
		Metrics: metrics, Log: log, OnReady: func() { ready.Store(true) },
	}
	if f.leaderElect {
		opts.LeaderElection = leaderElection(getenv, f.leaseNamespace, f.leaseName, f.leaseDuration)
		// A standby replica is ready: it is healthy and waiting for the lease.
		ready.Store(true)
	}
	err = podroute.Run(ctx, kube, conn.Client, opts)
	if ctx.Err() == nil && f.leaderElect {
		return errors.New("lost the leader lease; exiting so that a fresh start rejoins the election")
	}
	log.Info("shut down cleanly")
	return err
}

// serveMetrics serves /metrics, /healthz, and /readyz, which answers 503
// with ready's error until it returns nil.
func serveMetrics(addr string, reg *prometheus.Registry, ready func() error, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }) //nolint:errcheck
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-bind-address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	log.Info("serving metrics and health", zap.String("address", ln.Addr().String()))
	return srv, nil
}

// leaderElection configures a Lease in namespace (default: $POD_NAMESPACE,
// else kube-system) with this replica's identity (host name and a random
// suffix, so a restarted pod never impersonates its predecessor).
func leaderElection(getenv func(string) (string, bool), namespace, name string, duration time.Duration) *podroute.LeaderElection {
	if namespace == "" {
		if v, ok := getenv("POD_NAMESPACE"); ok && v != "" {
			namespace = v
		} else {
			namespace = "kube-system"
		}
	}
	host, _ := os.Hostname()
	return &podroute.LeaderElection{Namespace: namespace, Name: name, Identity: host + "_" + uuid.NewString()[:8],
		LeaseDuration: duration, RenewDeadline: duration * 2 / 3, RetryPeriod: duration / 7}
}
