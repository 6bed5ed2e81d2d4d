// Package hostguard keeps the management-network guard in the node's
// kernel, for the traffic the bridge never judges after translation: a
// connection kube-proxy translates in the node (a NodePort or an external
// IP whose endpoint is in the management network, from this node's pods or
// arriving from other nodes' pods, or a Service the bridge's table did not
// hold yet) leaves the node without crossing the bridge again. Its chain,
// T1ROUTE-GUARD, jumped to first from FORWARD, drops forwarded packets to
// the management networks unless they come from an exempt pod.
//
// Every source is guarded, not only the cluster's pod addresses: the agent
// does not know the cluster's CIDR (it is the controller's setting), and a
// list of the pods it has seen would let through a pod it has not seen yet.
// A node forwards to the management network only for its pods and for what
// kube-proxy translates; host processes and hostNetwork pods are not
// forwarded, so they are not affected.
package hostguard

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Chain is the agent's filter chain.
const Chain = "T1ROUTE-GUARD"

// Rules renders the chain for one family (iptables-restore input, applied
// with --noflush: only this chain is replaced, atomically): packets in the
// reply direction of a connection return (a pod answering a management
// host that reached it, as the bridge lets replies pass), then per guarded
// network, RETURN for each exempt source, then DROP. Networks and allowed
// sources of the other family are left out. Pure.
func Rules(networks, allowed []netip.Prefix, v6 bool) string {
	var b strings.Builder
	b.WriteString("*filter\n:" + Chain + " - [0:0]\n")
	replies := false
	for _, n := range networks {
		if n.Addr().Is6() != v6 {
			continue
		}
		if !replies {
			fmt.Fprintf(&b, "-A %s -m conntrack --ctdir REPLY -j RETURN\n", Chain)
			replies = true
		}
		for _, a := range allowed {
			if a.Addr().Is6() == v6 {
				fmt.Fprintf(&b, "-A %s -s %s -d %s -j RETURN\n", Chain, a, n)
			}
		}
		fmt.Fprintf(&b, "-A %s -d %s -j DROP\n", Chain, n)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// IPTables runs one family's iptables tools.
type IPTables struct {
	V6 bool
	// Prefix runs the tools through another command (tests: "ip netns exec NS"); empty: directly.
	Prefix []string
}

// IPv6 says which family t guards.
func (t IPTables) IPv6() bool { return t.V6 }

func (t IPTables) tool(name string) string {
	if t.V6 {
		return strings.Replace(name, "iptables", "ip6tables", 1)
	}
	return name
}

func (t IPTables) run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	argv := append(append(append([]string{}, t.Prefix...), t.tool(name)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", t.tool(name), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Apply replaces the chain's rules and makes sure FORWARD jumps to it
// first (kube-proxy's own FORWARD rules accept the connections it
// translates, so the guard must come before them). Idempotent.
func (t IPTables) Apply(ctx context.Context, networks, allowed []netip.Prefix) error {
	if _, err := t.run(ctx, Rules(networks, allowed, t.V6), "iptables-restore", "-w", "--noflush"); err != nil {
		return err
	}
	rules, err := t.run(ctx, "", "iptables", "-w", "-S", "FORWARD")
	if err != nil {
		return err
	}
	jump := "-A FORWARD -j " + Chain
	first, jumps := "", 0
	for _, line := range strings.Split(rules, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-A FORWARD") {
			continue
		}
		if first == "" {
			first = line
		}
		if line == jump {
			jumps++
		}
	}
	if first == jump && jumps == 1 {
		return nil
	}
	for range jumps {
		if _, err := t.run(ctx, "", "iptables", "-w", "-D", "FORWARD", "-j", Chain); err != nil {
			return err
		}
	}
	_, err = t.run(ctx, "", "iptables", "-w", "-I", "FORWARD", "1", "-j", Chain)
	return err
}
