package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// FlowTable is where flows go.
type FlowTable interface {
	// Replace makes the bridge's flows exactly flows, atomically, except
	// that the flows of the keep tables that flows does not list stay
	// (those OVS learned). Idempotent.
	Replace(ctx context.Context, flows []string, keep ...int) error
}

// PortSource lists a bridge's ports.
type PortSource interface {
	// Barrier returns once every change committed before it is visible to Ports.
	Barrier(ctx context.Context) error
	Ports(ctx context.Context, bridge string) ([]ovs.Port, error)
}

// SyncResult tells what a Sync installed.
type SyncResult struct {
	Flows, Pods int
	// PodPorts are the pods the table was built for.
	PodPorts []PodPort
	// Services is the service table installed (nil: none) and what the
	// service stage holds.
	Services     *ServiceTable
	ServiceStats ServiceStats
	BadPorts     []string // pod ports whose external_ids could not be parsed
	// Policy is the policy stage installed: its counters name the policy
	// behind each flow cookie.
	Policy *FlowSet
	// PolicyError is why the policy rules could not be read: Sync then
	// installed nothing (the table keeps the last rules that were readable).
	PolicyError error
	// PolicyMissing says there was no rules file (a node starting before
	// its enforcer wrote one): the table has no policy but the guard.
	PolicyMissing bool
}

// ErrPolicyUnreadable is Sync's error when the rules file exists but cannot
// be read: it installs nothing then, rather than a table without policy.
var ErrPolicyUnreadable = errors.New("the policy rules file is unreadable; flows left as they were")

// PolicyFile is where the agent writes the node's policy rules for every
// flow sync (its own and the CNI plugin's) to read.
func PolicyFile(runDir string) string { return filepath.Join(runDir, "t1route-policy.json") }

// FlowLockFile is the lock every writer of the bridge's flows holds: Sync,
// and Open vSwitch's supervisor when it restores flows (ovs.Daemons).
func FlowLockFile(runDir string) string { return filepath.Join(runDir, "t1route-flows.lock") }

// Sync rebuilds the bridge's whole flow table from OVSDB: the gateway port
// (tagged by the agent) and every pod port (tagged by the CNI plugin), from
// the policy rules file (PolicyFile; none yet: no policy), the service
// table (nil: none yet) and the management-network guard g (see Guard).
// The agent calls it for itself and for each CNI invocation; a lock file
// under the OVS run directory serialises them so that no caller installs a
// table computed before another's port existed. Session affinity entries
// OVS learned stay. It fails closed: a rules file that exists but cannot be
// read installs nothing (ErrPolicyUnreadable: the table keeps the last
// policy that could be read); a missing one installs the table with the
// guard and no other policy (PolicyMissing: a node whose enforcer has not
// written its rules yet; the agent answers no CNI ADD until it has).
func Sync(ctx context.Context, runDir, bridge string, g Guard, ports PortSource, table FlowTable, services *ServiceTable) (SyncResult, error) {
	unlock, err := ovs.LockFile(FlowLockFile(runDir))
	if err != nil {
		return SyncResult{}, err
	}
	defer unlock()
	if err := ports.Barrier(ctx); err != nil {
		return SyncResult{}, err
	}
	all, err := ports.Ports(ctx, bridge)
	if err != nil {
		return SyncResult{}, err
	}
	gw, err := gatewayOf(all)
	if err != nil {
		return SyncResult{}, err
	}
	pods, bad := PodPorts(all)
	pol, polErr := rules.ReadFile(PolicyFile(runDir))
	if polErr != nil {
		return SyncResult{Pods: len(pods), BadPorts: bad, PolicyError: polErr}, fmt.Errorf("%w: %w", ErrPolicyUnreadable, polErr)
	}
	out := Render(Input{Gateway: gw, Pods: pods, Policy: pol, Services: services, Guard: g})
	if err := table.Replace(ctx, out.Flows, LearnedTables...); err != nil {
		return SyncResult{}, err
	}
	return SyncResult{Flows: len(out.Flows), Pods: len(pods), PodPorts: pods, BadPorts: bad, Policy: out.Policy, PolicyMissing: pol == nil,
		Services: services, ServiceStats: out.Services}, nil
}

func gatewayOf(ports []ovs.Port) (Gateway, error) {
	for _, p := range ports {
		if p.ExternalIDs[KeyGateway] != "true" {
			continue
		}
		if p.OFPort <= 0 || p.MAC == "" {
			return Gateway{}, fmt.Errorf("gateway port %s is not built yet (ofport %d, mac %q)", p.Name, p.OFPort, p.MAC)
		}
		if _, err := net.ParseMAC(p.MAC); err != nil {
			return Gateway{}, fmt.Errorf("gateway port %s has MAC %q: %w", p.Name, p.MAC, err)
		}
		ips, err := parseIPs(p.ExternalIDs[KeyIPs])
		if err != nil {
			return Gateway{}, fmt.Errorf("gateway port %s has addresses %q: %w", p.Name, p.ExternalIDs[KeyIPs], err)
		}
		return Gateway{OFPort: p.OFPort, MAC: strings.ToLower(p.MAC), IPs: ips}, nil
	}
	return Gateway{}, fmt.Errorf("no gateway port on the bridge yet (the t1route agent creates it)")
}
