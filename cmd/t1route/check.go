package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/probe"
)

type checkFlags struct {
	kubeconfig string
	probes     []string
	routes     bool
	timeout    time.Duration
}

// checker prints one PASS/FAIL line per check and counts them.
type checker struct {
	out          io.Writer
	pass, failed int
}

func (c *checker) result(ok bool, format string, args ...any) {
	verdict := "PASS"
	if ok {
		c.pass++
	} else {
		verdict = "FAIL"
		c.failed++
	}
	fmt.Fprintf(c.out, "%s %s\n", verdict, fmt.Sprintf(format, args...))
}

func newCheckCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the routes on the Tier-1 and, with --probe, that a pod answers from here without NAT",
		Long: `check verifies, for every node, that its pod routes exist on the Tier-1, point
at the node, and are realized by NSX. With --probe <pod IP or URL> (repeatable)
it also pings the target and fetches it over HTTP from this host; the target must
run 't1route echo', whose answer must name this host's own address (any other
source means the traffic was translated on the way). One PASS/FAIL line each;
exit status 1 if anything failed. --routes=false probes without reading NSX or
Kubernetes (e.g. from a host outside the cluster).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			c := &checker{out: stdout}
			if f.routes {
				o, err := connectOneShot(ctx, cmd, getenv, f.kubeconfig, true, stderr)
				if err != nil {
					c.result(false, "routes: cannot check them: %v", err)
				} else if err := checkRoutes(ctx, o, c); err != nil {
					c.result(false, "routes: %v", err)
				}
			}
			for _, p := range f.probes {
				for _, r := range probe.Run(ctx, p) {
					c.result(r.OK, "%s", r.Message)
				}
			}
			fmt.Fprintf(stdout, "routability: %d passed, %d failed\n", c.pass, c.failed)
			if c.failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG)")
	fl.StringArrayVar(&f.probes, "probe", nil, "pod IP (HTTP port 8080) or http URL of a 't1route echo' to ping and fetch (repeatable)")
	fl.BoolVar(&f.routes, "routes", true, "check the routes on the Tier-1 (needs the NSXT_* configuration and Kubernetes)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}

func checkRoutes(ctx context.Context, o *oneShot, c *checker) error {
	cfg, kube := o.cfg, o.kube
	if !cfg.PodRoutingEnabled {
		return fmt.Errorf("pod routing is disabled (NSXT_POD_ROUTING_ENABLED is not true)")
	}
	uid, err := podroute.ClusterUID(ctx, kube)
	if err != nil {
		return err
	}
	nodeList, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	nodes := make([]podroute.Node, 0, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes = append(nodes, podroute.FromNode(&nodeList.Items[i]))
	}
	actual, err := o.nsx.ListRoutes(ctx, cfg.RouterPath)
	if err != nil {
		return fmt.Errorf("list routes on %s: %w", cfg.RouterPath, err)
	}
	id := podroute.Identity{UID: uid, Name: cfg.ClusterName}
	checks := podroute.CheckRoutes(id, cfg.ClusterCIDRs, nodes, actual)
	if len(checks) == 0 {
		c.result(false, "routes: no node has a podCIDR yet, so nothing is routable")
	}
	for _, ch := range checks {
		what := fmt.Sprintf("route node=%s %s via %s", ch.Node, ch.Network, ch.NextHop)
		if ch.Problem != "" {
			c.result(false, "%s: %s", what, ch.Problem)
			continue
		}
		r, err := o.nsx.Realized(ctx, ch.Route.Path)
		switch {
		case err != nil:
			c.result(false, "%s: realization unknown: %v", what, err)
		case r.State == nsx.StateRealized:
			c.result(true, "%s (realized)", what)
		case r.State == nsx.StateError:
			c.result(false, "%s: NSX failed to realize it: %s", what, r.Error)
		default:
			c.result(false, "%s: not realized yet (%s); run check again in a minute", what, r.State)
		}
	}
	return nil
}
