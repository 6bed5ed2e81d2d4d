package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
)

// RouteView is one route as `t1route routes list` shows it.
type RouteView struct {
	ID       string   `json:"id"`
	Network  string   `json:"network"`
	NextHops []string `json:"nextHops"`
	Node     string   `json:"node"`
	Cluster  string   `json:"cluster"`
	Realized string   `json:"realized"`
	Error    string   `json:"error,omitempty"`
}

func newRoutesCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	routes := &cobra.Command{Use: "routes", Short: "Show the routes on the Tier-1 or VPC (NSXT_ROUTER_PATH)", RunE: groupRun}
	var output, kubeconfig string
	var all, realization bool
	var timeout time.Duration
	list := &cobra.Command{
		Use:   "list",
		Short: "This cluster's routes on the Tier-1 or VPC: network, next hop, node, realized",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				fmt.Fprintf(stderr, "-o %q: use table, json or yaml\n", output)
				return exitError{2}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			o, err := connectOneShot(ctx, cmd, getenv, kubeconfig, !all, stderr)
			if err != nil {
				return err
			}
			views, err := listRoutes(ctx, o, all, realization)
			if err != nil {
				return err
			}
			return printRoutes(stdout, output, views)
		},
	}
	fl := list.Flags()
	config.AddFlags(fl)
	fl.StringVarP(&output, "output", "o", "table", "table, json or yaml")
	fl.BoolVar(&all, "all-clusters", false, "every t1route route on the Tier-1, of any cluster (needs no Kubernetes access)")
	fl.BoolVar(&realization, "realization", true, "read each route's realized state (from the Tier-1's forwarding table; one NSX call per route only for routes missing there)")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of this cluster (default: in-cluster, then $KUBECONFIG)")
	fl.DurationVar(&timeout, "timeout", oneShotTimeout, "give up after this long")
	routes.AddCommand(list)
	return routes
}

func listRoutes(ctx context.Context, o *oneShot, all, realization bool) ([]RouteView, error) {
	routes, err := o.nsx.ListRoutes(ctx, o.cfg.RouterPath)
	if err != nil {
		return nil, fmt.Errorf("list routes of %s: %w", o.cfg.RouterPath, err)
	}
	var id podroute.Identity
	if !all {
		uid, err := podroute.ClusterUID(ctx, o.kube)
		if err != nil {
			return nil, err
		}
		id = podroute.Identity{UID: uid, Name: o.cfg.ClusterName}
	}
	views := []RouteView{}
	var mine []nsx.Route
	for _, r := range routes {
		ref, ok := podroute.ClusterOf(r)
		if !ok || (!all && !id.Owns(r)) {
			continue
		}
		mine = append(mine, r)
		views = append(views, RouteView{ID: r.ID, Network: r.Network, NextHops: podroute.NextHopIPs(r), Node: podroute.NodeOf(r), Cluster: ref.Name, Realized: "-"})
	}
	if realization {
		// One read of the forwarding table; per-route calls only for routes
		// missing there.
		states, err := o.nsx.RealizeRoutes(ctx, o.cfg.RouterPath, mine)
		if err != nil {
			return nil, fmt.Errorf("read realization on %s: %w", o.cfg.RouterPath, err)
		}
		for i, st := range states {
			if st.Err != nil {
				views[i].Realized, views[i].Error = nsx.StateUnknown, st.Err.Error()
			} else {
				views[i].Realized, views[i].Error = st.State, st.Error
			}
		}
	}
	return views, nil
}

func printRoutes(w io.Writer, output string, views []RouteView) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	case "yaml":
		b, err := yaml.Marshal(views)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tNEXT HOP\tNODE\tCLUSTER\tREALIZED")
	for _, v := range views {
		hops := strings.Join(v.NextHops, ",")
		if hops == "" {
			hops = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Network, hops, v.Node, v.Cluster, v.Realized)
	}
	return tw.Flush()
}
