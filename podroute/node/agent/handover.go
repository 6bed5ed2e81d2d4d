package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"

	"github.com/t1route/t1route/podroute/node/neighbors"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Handing a node over between two agents. The agent DaemonSet upgrades with
// a surge: the new pod starts beside the old one, and the old one is
// stopped only once the new one is ready. Two agents must never write one
// bridge's flows, so a new agent stands by while another serves the node
// (its CNI sync socket answers: every version of the agent has one) and
// takes over the moment that one stops; meanwhile ovs.Daemons of the new
// pod copies the old switch's flows, so the switch it starts forwards with
// them. A node's agents of the same version also serialise on a lock file.

// agentLockName is the lock the serving agent holds, in the OVS run directory.
const agentLockName = "t1route-agent.lock"

// active is closed once this agent serves the node.
func (a *Agent) markActive() {
	a.activeOnce.Do(func() { close(a.active) })
}

// Active is closed once this agent serves the node (no other agent does).
func (a *Agent) Active() <-chan struct{} { return a.active }

// waitPredecessor returns once no other agent serves this node, holding
// the node's agent lock for the rest of the process.
func (a *Agent) waitPredecessor(ctx context.Context, podCIDRs []netip.Prefix) error {
	logged := false
	since := time.Now()
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", a.cfg.CNISocket)
		if err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
			break // nobody listens: the socket is absent, or a dead agent's
		}
		if err == nil {
			c.Close()
		}
		if !logged {
			a.log.Info("another agent serves this node (the old pod of a surge upgrade?): standing by until it stops",
				zap.String("socket", a.cfg.CNISocket))
			logged = true
			a.primeNeighbors(ctx, podCIDRs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	locked := make(chan error, 1)
	go func() {
		_, err := ovs.LockFile(filepath.Join(a.cfg.RunDir, agentLockName)) // held until the process ends
		locked <- err
	}()
	select {
	case err := <-locked:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if logged {
		a.log.Info("the other agent stopped: taking over", zap.Duration("stoodBy", time.Since(since)))
	}
	a.markActive()
	return nil
}

// primeNeighbors sets the pods' permanent neighbour entries on the gateway
// while this agent stands by: the agent it replaces may be of a version
// that keeps none, and the handover's switch restart flushes the dynamic
// ones (package neighbors). It only reads OVSDB and writes kernel entries
// both agents agree on; a failure is logged, and the entries follow the
// first sync after the takeover.
func (a *Agent) primeNeighbors(ctx context.Context, podCIDRs []netip.Prefix) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	db, err := ovs.DialOVSDB(ctx, a.cfg.RunDir, zapr.NewLogger(a.log))
	if err != nil {
		a.log.Warn("standing by: could not read the pods from OVSDB to set their neighbour entries before the takeover", zap.Error(err))
		return
	}
	defer db.Close()
	ports, err := db.Ports(ctx, a.cfg.Bridge)
	if err != nil {
		a.log.Warn("standing by: could not read the pods from OVSDB to set their neighbour entries before the takeover", zap.Error(err))
		return
	}
	pods, _ := pipeline.PodPorts(ports)
	a.keepNeighbors(ctx, neighbors.Link{Name: a.cfg.GatewayPort}, pods, podCIDRs)
}
