package introspect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// DefaultSocket is where the agent serves the introspection API: inside
// the agent's container, never on the node's network.
const DefaultSocket = "/var/run/t1route/agent.sock"

// Listen opens the introspection socket: its directory is made private
// (0700) before the socket exists, so no other user can reach the socket
// between its creation and its chmod to 0600; a socket left by an earlier
// run is replaced. Only callers running as root or as the agent's own user
// are served (checked with SO_PEERCRED on every connection).
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("introspection socket directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s private: %w", dir, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it or choose another --introspect-socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return &peerListener{UnixListener: ln.(*net.UnixListener), allowed: map[uint32]bool{0: true, uint32(os.Geteuid()): true}}, nil
}

// peerListener accepts only connections from allowed user IDs.
type peerListener struct {
	*net.UnixListener
	allowed map[uint32]bool
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if uid, err := peerUID(c); err == nil && l.allowed[uid] {
			return c, nil
		}
		c.Close() // a user the agent does not serve: the connection is refused without an answer
	}
}

// Serve serves h on the listener until ctx ends, then shuts down and
// removes the socket.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	cancel()
	<-done
	return err
}
