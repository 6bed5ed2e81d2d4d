package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
	routes := &cobra.Command{Use: "routes", Short: "Show the routes on the Tier-1"}
	var output, kubeconfig string
	var all, realization bool
	list := &cobra.Command{
		Use:   "list",
		Short: "This cluster's routes on the Tier-1: network, next hop, node, realized",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				fmt.Fprintf(stderr, "-o %q: use table, json or yaml\n", output)
				return exitError{2}
			}
			ctx := cmd.Context()
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
	fl.BoolVar(&realization, "realization", true, "read each route's realized state (one NSX call per route)")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of this cluster (default: in-cluster, then $KUBECONFIG)")
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
	for _, r := range routes {
		ref, ok := podroute.ClusterOf(r)
		if !ok || (!all && !id.Owns(r)) {
			continue
		}
		v := RouteView{ID: r.ID, Network: r.Network, NextHops: podroute.NextHopIPs(r), Node: podroute.NodeOf(r), Cluster: ref.Name, Realized: "-"}
		if realization {
			if st, err := o.nsx.Realized(ctx, r.Path); err != nil {
				v.Realized, v.Error = nsx.StateUnknown, err.Error()
			} else {
				v.Realized, v.Error = st.State, st.Error
			}
		}
		views = append(views, v)
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
