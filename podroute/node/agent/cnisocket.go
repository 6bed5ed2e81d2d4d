package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The flow-sync socket: the agent is the only writer of the bridge's flows
// (it has ovs-ofctl in its image; the node may have no OVS tools), so the CNI
// plugin, after plugging a pod's port through OVSDB, asks it to rebuild the
// flow table and waits. The protocol is one line each way: the plugin sends
// "sync", the agent answers "ok" once the flows are installed or
// "error <reason>". podroute/cni holds the client.

// CNISocketName is the socket's file name in the OVS run directory, which
// both the agent and the plugin already reach.
const CNISocketName = "t1route-cni.sock"

// syncTimeout bounds one requested sync.
const syncTimeout = 20 * time.Second

// serveCNI listens on path (root only, mode 0600) and answers sync requests
// with syncNow until ctx ends. It returns once listening.
func (a *Agent) serveCNI(ctx context.Context, path string, syncNow func(context.Context) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A previous agent's socket: nothing listens on it any more.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("CNI sync socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	a.log.Info("serving CNI flow sync", zap.String("socket", path))
	go func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("CNI sync socket stopped", zap.Error(err))
				}
				return
			}
			go a.answerSync(ctx, c, syncNow)
		}
	}()
	return nil
}

func (a *Agent) answerSync(ctx context.Context, c net.Conn, syncNow func(context.Context) error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(syncTimeout + 5*time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	if strings.TrimSpace(line) != "sync" {
		fmt.Fprintf(c, "error unknown request %q (want sync)\n", strings.TrimSpace(line))
		return
	}
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if err := syncNow(sctx); err != nil {
		// One line: the plugin returns it in its CNI error.
		fmt.Fprintf(c, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Fprintln(c, "ok")
}
