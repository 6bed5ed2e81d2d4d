package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/gc"
)

type gcFlags struct {
	cluster, liveKubeconfig, kubeconfig string
	orphans, yes, force, allowOverwrite bool
	keep                                []string
	timeout                             time.Duration
}

func newGCCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var f gcFlags
	cmd := &cobra.Command{
		Use:   "gc (--cluster <name or UID> | --orphans --live-clusters-kubeconfig <file>) [--yes]",
		Short: "Remove the routes of deleted clusters from the Tier-1 (dry run unless --yes)",
		Long: `gc removes from the Tier-1 the routes of a cluster that no longer exists, so nobody
has to find and delete them by hand in the NSX UI. It only ever touches routes
carrying t1route's ownership tags.

  --cluster <name or UID>   every route of that cluster (a name shared by two
                            clusters is refused: give the UID)
  --orphans                 the routes of every cluster that no longer exists as a
                            Cluster API Cluster in the management cluster given by
                            --live-clusters-kubeconfig (--keep protects a cluster
                            that is not managed by Cluster API); refused if one of
                            them is alive: the management cluster itself, or the
                            cluster the kubeconfig in use reaches

Without --yes it lists exactly what would go and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (f.cluster == "") == !f.orphans {
				fmt.Fprintln(stderr, "give exactly one of --cluster <name or UID> and --orphans")
				return exitError{2}
			}
			if f.orphans && f.liveKubeconfig == "" {
				fmt.Fprintln(stderr, "--orphans needs --live-clusters-kubeconfig: the management cluster whose Cluster API Clusters are alive")
				return exitError{2}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			o, err := connectOneShot(ctx, cmd, getenv, f.kubeconfig, false, stderr)
			if err != nil {
				return err
			}
			return runGC(ctx, o, f, stdout, stderr)
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&f.cluster, "cluster", "", "name (CLUSTER_NAME) or UID of the cluster whose routes to remove")
	fl.BoolVar(&f.orphans, "orphans", false, "remove the routes of every cluster no longer alive in --live-clusters-kubeconfig")
	fl.StringVar(&f.liveKubeconfig, "live-clusters-kubeconfig", "", "kubeconfig of the Cluster API management cluster")
	fl.StringArrayVar(&f.keep, "keep", nil, "with --orphans, a cluster name or UID never to collect (repeatable)")
	fl.BoolVar(&f.yes, "yes", false, "delete (without it: a dry run)")
	fl.BoolVar(&f.allowOverwrite, "allow-overwrite", true, "delete routes another identity created (a protected principal identity, e.g. a controller in certificate mode) with X-Allow-Overwrite, which NSX honours from an enterprise admin; only routes with t1route's tags of the chosen clusters are deleted; false: refuse")
	fl.BoolVar(&f.force, "force", false, "with --cluster, delete even the routes of the cluster the kubeconfig in use reaches (a live cluster)")
	fl.DurationVar(&f.timeout, "timeout", oneShotTimeout, "give up after this long (a later run finishes what an interrupted one left)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster holding the NSX credentials Secret (Secret auth only)")
	return cmd
}

func runGC(ctx context.Context, o *oneShot, f gcFlags, stdout, stderr io.Writer) error {
	routes, err := o.nsx.ListRoutes(ctx, o.cfg.RouterPath)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", o.cfg.RouterPath, err)
	}
	var doomed []nsx.Route
	var clusters []podroute.ClusterRef
	if f.cluster != "" {
		doomed, clusters = gc.RoutesOfCluster(routes, f.cluster)
		if len(clusters) > 1 {
			var uids []string
			for _, c := range clusters {
				uids = append(uids, c.UID)
			}
			fmt.Fprintf(stderr, "cluster name %q is used by %d clusters (UIDs %s): give --cluster <UID>\n", f.cluster, len(clusters), strings.Join(uids, ", "))
			return exitError{2}
		}
		if len(clusters) == 1 {
			if err := refuseLiveCluster(ctx, o, f, clusters[0], stderr); err != nil {
				return err
			}
		}
	} else {
		rc, err := connect.KubeConfig(f.liveKubeconfig, userAgent())
		if err != nil {
			return err
		}
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return err
		}
		live, err := gc.LiveClusters(ctx, dyn)
		if err != nil {
			return fmt.Errorf("%s: %w", f.liveKubeconfig, err)
		}
		keep := map[string]bool{}
		for _, k := range f.keep {
			keep[k] = true
		}
		doomed, clusters = gc.OrphanRoutes(routes, live, keep)
		if err := refuseLiveOrphans(ctx, o, f, rc, clusters, stderr); err != nil { // gc_live.go
			return err
		}
	}
	if len(doomed) == 0 {
		fmt.Fprintln(stdout, "nothing to collect: no t1route route on", o.cfg.RouterPath, "matches")
		return nil
	}
	verb := "would delete"
	if f.yes {
		verb = "deleting"
	}
	for _, c := range clusters {
		fmt.Fprintf(stdout, "%s the routes of cluster %s (UID %s)\n", verb, c.Name, c.UID)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNETWORK\tNEXT HOP\tCLUSTER\tNODE")
	ids := make([]string, 0, len(doomed))
	for _, r := range doomed {
		ref, _ := podroute.ClusterOf(r)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Network, strings.Join(podroute.NextHopIPs(r), ","), ref.Name, podroute.NodeOf(r))
		ids = append(ids, r.ID)
	}
	tw.Flush()
	if newest := newestChange(doomed); !newest.IsZero() && time.Since(newest) < recentChange {
		fmt.Fprintf(stderr, "warning: these routes were last changed %s ago: a controller may still be keeping them\n", time.Since(newest).Round(time.Second))
	}
	if !f.yes {
		fmt.Fprintf(stdout, "dry run: %d route(s) would be deleted; run again with --yes to delete them\n", len(doomed))
		return nil
	}
	actx := ctx
	if f.allowOverwrite {
		// Every doomed route carries t1route's tags of a chosen cluster.
		actx = nsx.WithAllowOverwrite(ctx)
	}
	if err := o.nsx.Apply(actx, o.cfg.RouterPath, nil, ids); err != nil {
		return fmt.Errorf("delete routes: %w", podroute.ExplainProtected(err, gc.ProtectionFix(f.allowOverwrite, "--allow-overwrite")))
	}
	fmt.Fprintf(stdout, "deleted %d route(s)\n", len(doomed))
	return nil
}

// recentChange is how recent a route change makes gc warn that the
// cluster may be alive (its controller rewrites routes as nodes change).
const recentChange = 24 * time.Hour

func newestChange(routes []nsx.Route) time.Time {
	var newest time.Time
	for _, r := range routes {
		if r.LastModified.After(newest) {
			newest = r.LastModified
		}
	}
	return newest
}

// refuseLiveCluster refuses (exit 2) to collect the routes of the cluster
// the kubeconfig in use reaches, unless --force: that cluster is alive, and
// its pods would lose their routes. Without a kubeconfig there is nothing to
// compare with; an unreachable cluster is only a warning.
func refuseLiveCluster(ctx context.Context, o *oneShot, f gcFlags, c podroute.ClusterRef, stderr io.Writer) error {
	kube := o.kube
	if kube == nil {
		k, err := connect.Kube(f.kubeconfig, userAgent())
		if err != nil {
			return nil // no cluster in use
		}
		kube = k
	}
	uid, err := podroute.ClusterUID(ctx, kube)
	if err != nil {
		fmt.Fprintf(stderr, "warning: cannot tell whether cluster %s is the one the kubeconfig reaches: %v\n", c.Name, err)
		return nil
	}
	if uid != c.UID {
		return nil
	}
	if f.force {
		fmt.Fprintf(stderr, "warning: cluster %s (UID %s) is the cluster the kubeconfig in use reaches: collecting its routes anyway (--force)\n", c.Name, c.UID)
		return nil
	}
	fmt.Fprintf(stderr, "refusing: cluster %s (UID %s) is the cluster the kubeconfig in use reaches, so it is alive and its pods would lose their routes; point --kubeconfig (or KUBECONFIG) elsewhere, or add --force if you really mean it\n", c.Name, c.UID)
	return exitError{2}
}
