// Package connect is the one wiring from t1route's configuration to ready
// clients: the Kubernetes client of a command, and the NSX client with the
// authentication the configuration chose. Every command, the integration
// tests, the demo and bench connect through it.
package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/config"
)

// Options tune the NSX client; the zero value is production's defaults.
type Options struct {
	Limits nsx.Limits
	// Observe, if set, hears of every NSX call (for metrics).
	Observe func(op string, status, attempts int, d time.Duration)
	// BatchSize is routes per hierarchical call (0: the client's default).
	BatchSize int
	// Log receives the connection's warnings and the credential watchers'
	// logs (nil: none).
	Log *zap.Logger
}

// NSXConnection is an NSX client built from the configuration, and whether
// its credentials are ready (a Secret may not be readable yet).
type NSXConnection struct {
	Client *nsx.Client
	ready  func() error
}

// Ready returns nil when the credentials are available, or why not.
func (c *NSXConnection) Ready() error { return c.ready() }

// WaitReady waits up to limit (or until ctx ends) for the credentials,
// which arrive asynchronously when they come from a Secret.
func (c *NSXConnection) WaitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NSX credentials not available: %w", err)
		case <-deadline.C:
			return fmt.Errorf("NSX credentials not available: %w", err)
		case <-tick.C:
		}
	}
}

// ManagerTLS is the TLS configuration for the manager: the pinned CA, or
// the system's roots.
func ManagerTLS(cfg config.Config) (*tls.Config, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.RootCAPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.TLS.RootCAPEM) {
			return nil, fmt.Errorf("NSXT_ROOT_CA_DATA_B64 holds no usable certificate")
		}
		tlsConf.RootCAs = pool
	}
	tlsConf.InsecureSkipVerify = cfg.TLS.InsecureSkipVerify //nolint:gosec // the operator asked for it, and is warned
	return tlsConf, nil
}

// NSX builds the NSX client for cfg. With Secret authentication it starts
// watching the Secret (until ctx ends) and needs kube; otherwise kube may be nil.
func NSX(ctx context.Context, cfg config.Config, kube kubernetes.Interface, o Options) (*NSXConnection, error) {
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	tlsConf, err := ManagerTLS(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("NSXT_ALLOW_UNVERIFIED_SSL=true: the NSX Manager's certificate is not verified, so anyone on the path can read the credentials sent to it; do not use this in production (the VMC token service, if used, is still verified)")
	}
	conn := &NSXConnection{ready: func() error { return nil }}
	var authn nsx.Authenticator
	a := cfg.Auth
	switch a.Mode {
	case config.AuthClientCert:
		cert := &auth.ClientCert{CertPEM: []byte(a.CertPEM.Reveal()), KeyPEM: []byte(a.KeyPEM.Reveal()), CertFile: a.CertFile, KeyFile: a.KeyFile, Logger: log}
		if err := cert.Load(); err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cert.ConfigureTLS(tlsConf)
	case config.AuthVMCToken:
		authn = &auth.CSPToken{AuthHost: a.VMCAuthHost, APIToken: a.VMCToken.Reveal(), Logger: log, Client: cspHTTPClient(cfg.TLS)}
	case config.AuthSecret:
		if kube == nil {
			return nil, fmt.Errorf("authentication from Secret %s/%s needs a Kubernetes client", a.SecretNamespace, a.SecretName)
		}
		creds := &auth.SecretCredentials{Client: kube, Namespace: a.SecretNamespace, Name: a.SecretName, Logger: log}
		go func() {
			if err := creds.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("watching the credentials Secret failed", zap.Error(err))
			}
		}()
		conn.ready = creds.Ready
		authn = passwordAuth(cfg, creds, log)
	case config.AuthPassword:
		authn = passwordAuth(cfg, auth.Static{Username: a.Username, Password: a.Password.Reveal()}, log)
	default:
		return nil, fmt.Errorf("no way to authenticate to NSX is configured")
	}
	client, err := nsx.New(nsx.Config{Host: cfg.ManagerURL, TLS: tlsConf, Auth: authn, Limits: o.Limits, Logger: log.Named("nsx"),
		Observe: o.Observe, BatchSize: o.BatchSize})
	if err != nil {
		return nil, err
	}
	conn.Client = client
	return conn, nil
}

func passwordAuth(cfg config.Config, creds auth.Credentials, log *zap.Logger) nsx.Authenticator {
	if cfg.Auth.SessionAuth {
		return &auth.Session{BaseURL: cfg.ManagerURL, Credentials: creds, Logger: log}
	}
	return auth.Basic{Credentials: creds, Remote: cfg.Auth.Remote}
}

// cspHTTPClient reaches VMware Cloud Services: the system's roots plus any
// pinned manager CA (CSP is a public service; the manager may not be). Its
// certificate is always verified: the exchange sends the VMC API token, a
// long-lived credential, and NSXT_ALLOW_UNVERIFIED_SSL (meant for a
// manager with a self-signed certificate) never applies to it.
func cspHTTPClient(t config.TLSSettings) *http.Client {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if t.RootCAPEM != nil {
		pool.AppendCertsFromPEM(t.RootCAPEM)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf, Proxy: http.ProxyFromEnvironment}}
}
