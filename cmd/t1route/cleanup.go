package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
)

func newCleanupControllerCommand(stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var kubeconfig, logFormat, logLevel string
	var resync time.Duration
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
			level, err := zapcore.ParseLevel(logLevel)
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log, err := newLogger(stderr, logFormat, level)
			if err != nil {
				return err
			}
			klog.SetLogger(zapr.NewLogger(log.Named("client-go")))
			nsx.RouteSDKLogs(log)
			o, err := connectOneShot(ctx, cmd, getenv, kubeconfig, false, stderr)
			if err != nil {
				return err
			}
			rc, err := kubeClientConfig(kubeconfig)
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(rc)
			if err != nil {
				return err
			}
			log.Info("starting the cluster cleanup controller", zap.String("tier1", o.cfg.RouterPath))
			return podroute.NewCleanupController(podroute.CleanupConfig{Tier1Path: o.cfg.RouterPath, Resync: resync}, dyn, o.nsx, log).Run(ctx)
		},
	}
	fl := cmd.Flags()
	addConfigFlags(fl)
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the management cluster (default: in-cluster, then $KUBECONFIG)")
	fl.DurationVar(&resync, "resync-period", time.Minute, "revisit every Cluster and re-list NSX this often")
	fl.StringVar(&logFormat, "log-format", "json", "json or console")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
