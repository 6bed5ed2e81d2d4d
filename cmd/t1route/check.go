package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
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
				probe(ctx, p, c)
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

// probe pings a target and fetches its echo over HTTP, checking that the
// echo saw this host's own address.
func probe(ctx context.Context, target string, c *checker) {
	u, err := probeURL(target)
	if err != nil {
		c.result(false, "probe %q: %v", target, err)
		return
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		c.result(false, "probe %q: %s is not an IP address", target, host)
		return
	}
	if got, total, err := ping(ctx, ip); err != nil {
		c.result(false, "ping %s: %v", ip, err)
	} else {
		c.result(got > 0, "ping %s: %d/%d replies", ip, got, total)
	}
	local, err := sourceAddr(ip)
	if err != nil {
		c.result(false, "http %s: no route from this host: %v", u, err)
		return
	}
	reply, err := fetchEcho(ctx, u.String())
	switch {
	case err != nil:
		c.result(false, "http %s: %v", u, err)
	case reply.RemoteIP != local.String():
		c.result(false, "http %s: the echo saw %s but this host sent from %s: the source address was translated (NAT) on the way",
			u, reply.RemoteIP, local)
	default:
		c.result(true, "http %s: the echo saw this host's own address %s (no NAT)", u, local)
	}
}

func probeURL(target string) (*url.URL, error) {
	if !strings.Contains(target, "://") {
		if ip, err := netip.ParseAddr(target); err == nil {
			return &url.URL{Scheme: "http", Host: net.JoinHostPort(ip.String(), "8080"), Path: "/"}, nil
		}
		return nil, fmt.Errorf("give a pod IP or an http:// URL")
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return nil, fmt.Errorf("give a pod IP or an http:// URL")
	}
	return u, nil
}

var pingReceived = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`)

func ping(ctx context.Context, ip netip.Addr) (received, sent int, err error) {
	out, _ := exec.CommandContext(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ip.String()).CombinedOutput()
	m := pingReceived.FindStringSubmatch(string(out))
	if m == nil {
		return 0, 0, fmt.Errorf("no ping summary (is ping installed?): %s", strings.TrimSpace(string(out)))
	}
	fmt.Sscan(m[1], &sent)     //nolint:errcheck
	fmt.Sscan(m[2], &received) //nolint:errcheck
	return received, sent, nil
}

// sourceAddr is the address this host's routing picks to reach ip.
func sourceAddr(ip netip.Addr) (netip.Addr, error) {
	conn, err := net.Dial("udp", net.JoinHostPort(ip.String(), "9"))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func fetchEcho(ctx context.Context, u string) (EchoReply, error) {
	var reply EchoReply
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return reply, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return reply, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &reply); err != nil || reply.RemoteIP == "" {
		return reply, fmt.Errorf("the answer is not from 't1route echo': %.80q", body)
	}
	return reply, nil
}
