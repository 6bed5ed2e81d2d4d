package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/doctor"
)

func newDoctorCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var kubeconfig, serviceCIDR, leaseNamespace string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Preflight: configuration, manager, credentials, version, Tier-1, advertisement, CIDRs, Kubernetes, RBAC",
		Long: `doctor checks everything t1route needs before (or while) it runs, one PASS, WARN
or FAIL line each with a hint to fix it: the configuration; the manager is
reachable and its certificate verified; the credentials are accepted; the
manager's version and cluster status (Management Plane API); the Tier-1 exists
and advertises its static routes to the Tier-0; CLUSTER_CIDR does not overlap
the service range; Kubernetes is reachable and this identity may do what the
controller does. A SKIP line names checks that could not run. Exit status 1
on any FAIL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			o := doctor.Options{ServiceCIDRs: serviceCIDR, LeaseNamespace: daemon.LeaseNamespace(getenv, leaseNamespace), UserAgent: userAgent()}
			o.Config, o.Problems = config.Load(config.Settings{Flags: cmd.Flags(), Getenv: getenv})
			if len(o.Problems) == 0 && o.Config.PodRoutingEnabled {
				var err error
				if o.Log, err = daemon.NewLogger(stderr, "console", "error"); err != nil {
					return err
				}
				o.Kube, o.KubeErr = connect.Kube(kubeconfig, userAgent())
			}
			results := doctor.Run(ctx, o)
			count := map[doctor.Level]int{}
			for _, r := range results {
				count[r.Level]++
				fmt.Fprintf(stdout, "%-4s %s: %s\n", r.Level, r.Check, r.Message)
				if r.Fix != "" && r.Level != doctor.Pass {
					fmt.Fprintf(stdout, "     fix: %s\n", r.Fix)
				}
			}
			fmt.Fprintf(stdout, "doctor: %d passed, %d warnings, %d failed", count[doctor.Pass], count[doctor.Warn], count[doctor.Fail])
			if count[doctor.Skip] > 0 {
				fmt.Fprintf(stdout, ", %d skipped", count[doctor.Skip])
			}
			fmt.Fprintln(stdout)
			if doctor.Failed(results) {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, then $KUBECONFIG)")
	fl.StringVar(&serviceCIDR, "service-cidr", "", "the cluster's service range(s), comma-separated (default: read from the cluster's ServiceCIDRs)")
	fl.StringVar(&leaseNamespace, "leader-election-namespace", "", "namespace of the controller's Lease (default: $POD_NAMESPACE, else kube-system)")
	fl.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}
