package main

import (
	"context"
	"errors"
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
		Short: "Verify the routes on the Tier-1 or VPC and, with --probe, that a pod answers from here without NAT",
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
				var ee exitError
				if errors.As(err, &ee) {
					return err // the configuration's problems are printed
				}
				if err != nil {
					c.result(false, "routes: cannot check them: %s", nsx.Explain(err))
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
	fl.DurationVar(&f.timeout, "timeout", oneShotTimeout, "give up after this long")
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
	id := podroute.Identity{UID: uid, Name: cfg.ClusterName}
	verdicts, err := podroute.Check(ctx, o.nsx, cfg.RouterPath, id, cfg.ClusterCIDRs, nodes)
	if err != nil {
		return err
	}
	if len(verdicts) == 0 {
		c.result(false, "routes: no node has a podCIDR yet, so nothing is routable")
	}
	for _, v := range verdicts {
		what := describeRoute(v.Node, v.Network, v.NextHop)
		r := v.Realization
		switch {
		case v.Problem != "":
			c.result(false, "%s: %s", what, v.Problem)
		case r.Err != nil:
			c.result(false, "%s: realization unknown: %v", what, r.Err)
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

// describeRoute names a node's route for a check line; a node without an
// address has no next hop to show.
func describeRoute(node, network, nextHop string) string {
	if nextHop == "" {
		return fmt.Sprintf("route node=%s %s (no next hop: the node has no address)", node, network)
	}
	return fmt.Sprintf("route node=%s %s via %s", node, network, nextHop)
}
