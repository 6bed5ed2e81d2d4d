package ovs

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// FlowTable is where flows go. Replace is idempotent.
type FlowTable interface {
	Replace(ctx context.Context, flows []string) error
}

// PortSource lists a bridge's ports.
type PortSource interface {
	// Barrier returns once every change committed before it is visible to Ports.
	Barrier(ctx context.Context) error
	Ports(ctx context.Context, bridge string) ([]Port, error)
}

// SyncResult tells what a Sync installed.
type SyncResult struct {
	Flows, Pods int
	BadPorts    []string // pod ports whose external_ids could not be parsed
}

// Sync rebuilds the bridge's whole flow table from OVSDB: the gateway port
// (tagged by the agent) and every pod port (tagged by the CNI plugin). The
// agent and each CNI invocation call it; a lock file under the OVS run
// directory serialises them so that no caller installs a table computed
// before another's port existed.
func Sync(ctx context.Context, runDir, bridge string, ports PortSource, table FlowTable) (SyncResult, error) {
	unlock, err := lockFile(filepath.Join(runDir, "t1route-flows.lock"))
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
	flows := Pipeline(gw, pods)
	if err := table.Replace(ctx, flows); err != nil {
		return SyncResult{}, err
	}
	return SyncResult{Flows: len(flows), Pods: len(pods), BadPorts: bad}, nil
}

func gatewayOf(ports []Port) (Gateway, error) {
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
