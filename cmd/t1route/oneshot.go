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
)

// oneShot is what a one-shot command (gc, routes, check) needs: the
// configuration, an NSX connection whose credentials are loaded, and, when
// asked for or when credentials come from a Secret, a Kubernetes client.
type oneShot struct {
	cfg  config.Config
	nsx  *nsx.Client
	kube kubernetes.Interface
	log  *zap.Logger
}

// connectOneShot reads the NSXT_* configuration (flags win) and connects.
// needKube makes a Kubernetes client even when credentials do not need one.
func connectOneShot(ctx context.Context, cmd *cobra.Command, getenv func(string) (string, bool), kubeconfig string, needKube bool, stderr io.Writer) (*oneShot, error) {
	cfg, _, err := loadConfig(cmd, getenv, stderr)
	if err != nil {
		return nil, err
	}
	var missing []string
	if cfg.ManagerURL == "" {
		missing = append(missing, "NSXT_MANAGER_HOST")
	}
	if cfg.RouterPath == "" {
		missing = append(missing, "NSXT_ROUTER_PATH")
	}
	if cfg.Auth.Mode == "" {
		missing = append(missing, "a way to authenticate (NSXT_CLIENT_CERT_DATA+NSXT_CLIENT_CERT_KEY_DATA, NSXT_VMC_ACCESS_TOKEN+NSXT_VMC_AUTH_HOST, NSXT_SECRET_NAMESPACE+NSXT_SECRET_NAME, or NSXT_USERNAME+NSXT_PASSWORD)")
	}
	if len(missing) > 0 {
		for _, m := range missing {
			fmt.Fprintf(stderr, "%s: is required for this command\n", m)
		}
		return nil, exitError{2}
	}
	log, err := newLogger(stderr, "console", zap.WarnLevel)
	if err != nil {
		return nil, err
	}
	nsx.RouteSDKLogs(log) // the SDK logs every request to the standard logger otherwise
	o := &oneShot{cfg: cfg, log: log}
	if needKube || cfg.Auth.Mode == config.AuthSecret {
		rc, err := connect.KubeConfig(kubeconfig, userAgent())
		if err != nil {
			return nil, err
		}
		if o.kube, err = kubernetes.NewForConfig(rc); err != nil {
			return nil, err
		}
	}
	conn, err := connect.NSX(ctx, cfg, o.kube, connect.Options{Limits: nsx.Limits{RateLimit: 50, MaxInFlight: 10}, BatchSize: 1000, Log: log})
	if err != nil {
		return nil, err
	}
	if err := conn.WaitReady(ctx, 15*time.Second); err != nil {
		return nil, err
	}
	o.nsx = conn.Client
	return o, nil
}
