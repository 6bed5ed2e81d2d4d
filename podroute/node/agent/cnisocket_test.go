package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/podroute/node/cni"
)

// The CNI plugin's call returns only once the agent's sync has finished,
// carries the agent's failure, and names the socket when no agent listens.
func TestCNISyncSocket(t *testing.T) {
	cases := []struct {
		name    string
		syncErr error
		want    string // in the plugin's error; "" for success
	}{
		{"flows installed", nil, ""},
		{"sync fails", errors.New("no gateway port on the bridge yet"), "could not install flows: no gateway port on the bridge yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "run", CNISocketName)
			// A previous agent's socket file is replaced.
			os.MkdirAll(filepath.Dir(sock), 0o755) //nolint:errcheck
			os.WriteFile(sock, nil, 0o644)         //nolint:errcheck
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			release := make(chan struct{})
			synced := make(chan struct{}, 1)
			a := New(Config{}, nil, zap.NewNop(), nil)
			if err := a.serveCNI(ctx, sock, func(context.Context) error {
				<-release
				synced <- struct{}{}
				return tc.syncErr
			}); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
				t.Fatalf("socket %v, %v: want a socket with mode 0600", st, err)
			}
			done := make(chan error, 1)
			go func() {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer ccancel()
				done <- cni.SyncFlows(cctx, sock)
			}()
			select {
			case err := <-done:
				t.Fatalf("the plugin's call returned before the sync ran: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			err := <-done
			<-synced
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), sock)):
				t.Fatalf("error %v, want one naming %s and containing %q", err, sock, tc.want)
			}
			cancel()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := os.Stat(sock); errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the socket outlived the agent")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestCNISyncWithoutAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), CNISocketName)
	err := cni.SyncFlows(context.Background(), sock)
	if !errors.Is(err, cni.ErrAgentDown) || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "agent") {
		t.Fatalf("error %v: want ErrAgentDown naming %s", err, sock)
	}
}

// An ADD waits for an agent that is not listening yet (a node booting, an
// agent restarting or handing over) rather than failing at once.
func TestCNISyncWaitsForTheAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), CNISocketName)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(600*time.Millisecond, func() {
		a := New(Config{}, nil, zap.NewNop(), nil)
		if err := a.serveCNI(ctx, sock, func(context.Context) error { return nil }); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	if err := cni.SyncFlowsWaiting(ctx, sock, 5*time.Second); err != nil {
		t.Fatalf("with an agent listening after 0.6 s: %v", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("answered after %s, before any agent listened", took)
	}
	other := filepath.Join(t.TempDir(), CNISocketName)
	start = time.Now()
	if err := cni.SyncFlowsWaiting(ctx, other, 300*time.Millisecond); !errors.Is(err, cni.ErrAgentDown) || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("without an agent: %v after %s", err, time.Since(start))
	}
}
