package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
)

// A cluster is alive if its kube-system namespace answers with the UID its
// routes are tagged with. gc never collects a live cluster's routes: with
// --cluster that is the cluster the kubeconfig in use reaches
// (refuseLiveCluster, which --force overrides); with --orphans it is that
// cluster and the management cluster of --live-clusters-kubeconfig, which
// are alive whatever Cluster API lists (refuseLiveOrphans; --keep leaves
// one out, nothing overrides it).

// liveCheckTimeout bounds each kube-system lookup: an API server that does
// not answer is only a warning.
const liveCheckTimeout = 15 * time.Second

// liveClusterUIDs are the UIDs of the clusters that answer through the
// kubeconfig in use (o's client, else --kubeconfig, KUBECONFIG or
// in-cluster) and through mgmt (the --live-clusters-kubeconfig, nil if
// none), with where each answered. A kubeconfig that resolves but whose
// cluster does not answer is warned about.
func liveClusterUIDs(ctx context.Context, o *oneShot, kubeconfig string, mgmt *rest.Config, stderr io.Writer) map[string]string {
	live := map[string]string{}
	ask := func(kube kubernetes.Interface, where string) {
		ctx, cancel := context.WithTimeout(ctx, liveCheckTimeout)
		defer cancel()
		uid, err := podroute.ClusterUID(ctx, kube)
		if err != nil {
			fmt.Fprintf(stderr, "warning: cannot tell whether the cluster of %s has routes here: %v\n", where, err)
			return
		}
		live[uid] = where
	}
	inUse := "the kubeconfig in use (--kubeconfig, KUBECONFIG or in-cluster)"
	if o.kube != nil {
		ask(o.kube, inUse)
	} else if kube, err := connect.Kube(kubeconfig, userAgent()); err == nil {
		ask(kube, inUse)
	}
	if mgmt != nil {
		if kube, err := kubernetes.NewForConfig(mgmt); err == nil {
			ask(kube, "--live-clusters-kubeconfig (the management cluster)")
		}
	}
	return live
}

// refuseLiveOrphans refuses (exit 2) an --orphans run that selected a live
// cluster's routes, naming each and how to leave it out.
func refuseLiveOrphans(ctx context.Context, o *oneShot, f gcFlags, mgmt *rest.Config, selected []podroute.ClusterRef, stderr io.Writer) error {
	if len(selected) == 0 {
		return nil
	}
	live := liveClusterUIDs(ctx, o, f.kubeconfig, mgmt, stderr)
	refused := false
	for _, c := range selected {
		if where, ok := live[c.UID]; ok {
			fmt.Fprintf(stderr, "refusing: cluster %s (UID %s) is not a Cluster API cluster of the management cluster, but it is alive: its kube-system namespace answers through %s, and its pods would lose their routes; add --keep %s to leave it out\n",
				c.Name, c.UID, where, c.UID)
			refused = true
		}
	}
	if refused {
		return exitError{2}
	}
	return nil
}
