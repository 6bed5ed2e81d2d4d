package cni

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// ErrAgentDown means nothing listens on the agent's socket.
var ErrAgentDown = errors.New("t1route agent not running")

// SyncFlows asks the node agent, over its unix socket, to rebuild the
// bridge's flow table, and returns once the flows are installed. The agent
// is the only flow writer: this plugin needs no OVS tools on the host.
func SyncFlows(ctx context.Context, socket string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: nothing listens on %s (is the t1route agent pod running on this node?): %v", ErrAgentDown, socket, err)
		}
		return fmt.Errorf("reach the t1route agent at %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintln(c, "sync"); err != nil {
		return fmt.Errorf("ask the t1route agent at %s to install flows: %w", socket, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the t1route agent at %s did not answer: %w", socket, err)
	}
	line = strings.TrimSpace(line)
	if line == "ok" {
		return nil
	}
	return fmt.Errorf("the t1route agent at %s could not install flows: %s", socket, strings.TrimPrefix(line, "error "))
}

// SyncFlowsWaiting is SyncFlows, waiting up to wait (within ctx) for an
// agent to listen when none does yet: a node that just booted, or an agent
// restarting or handing over to its successor. Refusing at once would put
// the pod behind the kubelet's growing retry back-off (tens of seconds).
func SyncFlowsWaiting(ctx context.Context, socket string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := SyncFlows(ctx, socket)
		if !errors.Is(err, ErrAgentDown) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// agentError is SyncFlows' error as a CNI error.
func agentError(err error) error {
	return types.NewError(types.ErrTryAgainLater, err.Error(), "the t1route agent writes the flows; see its log (kubectl -n t1route-system logs ds/t1route-agent -c agent)")
}
