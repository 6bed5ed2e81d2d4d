package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
)

// oneShot is what a command that works on the Tier-1 (gc, routes, check,
// cleanup-controller) needs: the configuration, an NSX connection whose
// credentials are loaded, and, when asked for or when credentials come from
// a Secret, a Kubernetes client.
type oneShot struct {
	cfg  config.Config
	nsx  *nsx.Client
	kube kubernetes.Interface
}

// connectOneShot reads the NSXT_* configuration (flags win) and connects,
// logging NSX's and client-go's warnings to stderr for a person to read.
// needKube makes a Kubernetes client even when credentials do not need one.
func connectOneShot(ctx context.Context, cmd *cobra.Command, getenv func(string) (string, bool), kubeconfig string, needKube bool, stderr io.Writer) (*oneShot, error) {
	cfg, _, err := loadConfig(cmd, getenv, stderr)
	if err != nil {
		return nil, err
	}
	if err := requireNSX(cfg, stderr); err != nil {
		return nil, err
	}
	log, err := daemon.NewLogger(stderr, "console", "warn")
	if err != nil {
		return nil, err
	}
	return dialNSX(ctx, cfg, kubeconfig, needKube, true, log)
}

// oneShotTimeout is the default --timeout of one-shot commands: a person
// waits, and an unreachable manager fails at once anyway (FailFast).
const oneShotTimeout = 60 * time.Second

// requireNSX names what a command that talks to NSX lacks (exit status 2):
// validation accepts a configuration without them while pod routing is off.
func requireNSX(cfg config.Config, stderr io.Writer) error {
	var missing []string
	if cfg.ManagerURL == "" {
		missing = append(missing, "NSXT_MANAGER_HOST")
	}
	if cfg.RouterPath.IsZero() {
		missing = append(missing, "NSXT_ROUTER_PATH")
	}
	if cfg.Auth.Mode == "" {
		missing = append(missing, "a way to authenticate (NSXT_CLIENT_CERT_DATA+NSXT_CLIENT_CERT_KEY_DATA, NSXT_VMC_ACCESS_TOKEN+NSXT_VMC_AUTH_HOST, NSXT_SECRET_NAMESPACE+NSXT_SECRET_NAME, or NSXT_USERNAME+NSXT_PASSWORD)")
	}
	for _, m := range missing {
		fmt.Fprintf(stderr, "%s: is required for this command\n", m)
	}
	if len(missing) > 0 {
		return exitError{2}
	}
	return nil
}

// dialNSX connects to NSX (and Kubernetes, when needKube or when the
// credentials are in a Secret) and waits up to 15 s for the credentials.
// failFast (one-shot commands) gives up at once on a manager that cannot be
// reached instead of retrying.
func dialNSX(ctx context.Context, cfg config.Config, kubeconfig string, needKube, failFast bool, log *zap.Logger) (*oneShot, error) {
	o := &oneShot{cfg: cfg}
	if needKube || cfg.Auth.Mode == config.AuthSecret {
		var err error
		if o.kube, err = connect.Kube(kubeconfig, userAgent()); err != nil {
			return nil, err
		}
	}
	conn, err := connect.NSX(ctx, cfg, o.kube, connect.Options{Limits: nsx.Limits{RateLimit: 50, MaxInFlight: 10, FailFast: failFast}, BatchSize: 1000, Log: log})
	if err != nil {
		return nil, err
	}
	if err := conn.WaitReady(ctx, 15*time.Second); err != nil {
		return nil, err
	}
	o.nsx = conn.Client
	return o, nil
}
