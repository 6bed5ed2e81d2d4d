package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/gc"
)

func newCleanupControllerCommand(stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var kubeconfig, logFormat, logLevel, leaseNamespace, leaseName string
	var resync time.Duration
	var leaderElect, allowOverwrite bool
	cmd := &cobra.Command{
		Use:   "cleanup-controller",
		Short: "In a Cluster API management cluster: remove a deleted cluster's routes from the Tier-1",
		Long: `cleanup-controller runs in the Cluster API management cluster. It puts the
finalizer t1route.io/route-cleanup on every Cluster (cluster.x-k8s.io) with
routable pods (routes on the Tier-1 under its name, or the label
t1route.io/pod-routing=true), and when such a Cluster is deleted removes its
routes and releases the finalizer once Cluster API has finished with it.
The workload clusters' CLUSTER_NAME must be their Cluster API Cluster name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg, _, err := loadConfig(cmd, getenv, stderr)
			if err != nil {
				return err
			}
			if err := requireNSX(cfg, stderr); err != nil {
				return err
			}
			log, err := daemon.NewLogger(stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck
			o, err := dialNSX(ctx, cfg, kubeconfig, true, false, log)
			if err != nil {
				return err
			}
			rc, err := connect.KubeConfig(kubeconfig, userAgent())
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(rc)
			if err != nil {
				return err
			}
			var le *daemon.LeaderElection
			if leaderElect {
				le = daemon.Lease(getenv, leaseNamespace, leaseName, 15*time.Second)
			}
			log.Info("starting the cluster cleanup controller", zap.Stringer("router", cfg.RouterPath), zap.Bool("leader_elect", leaderElect))
			return daemon.RunElected(ctx, o.kube, le, log, nil, func(ctx context.Context) error {
				return gc.NewCleanupController(gc.CleanupConfig{Router: cfg.RouterPath, Resync: resync, AllowOverwrite: allowOverwrite}, dyn, o.nsx, log).Run(ctx)
			})
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the management cluster (default: in-cluster, then $KUBECONFIG)")
	fl.DurationVar(&resync, "resync-period", time.Minute, "revisit every Cluster and re-list NSX this often")
	fl.BoolVar(&allowOverwrite, "allow-overwrite", true, "delete a deleted cluster's routes (only routes with its t1route tags) even if another identity created them, with X-Allow-Overwrite (needs an enterprise admin); false: refuse")
	fl.BoolVar(&leaderElect, "leader-elect", true, "run only while holding the leader Lease (run 2 replicas)")
	fl.StringVar(&leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: $POD_NAMESPACE, else kube-system)")
	fl.StringVar(&leaseName, "leader-election-name", "t1route-cleanup-controller", "name of the Lease")
	fl.StringVar(&logFormat, "log-format", "json", "json or console")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
