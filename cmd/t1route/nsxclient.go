package main

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

// nsxConnection is an NSX client built from the configuration, and whether
// its credentials are ready (a Secret may not be readable yet).
// managerTLS is the TLS configuration for the manager: the pinned CA, or the
// system's roots.
func managerTLS(cfg config.Config) (*tls.Config, error) {
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

// waitReady waits up to limit (or ctx) for the credentials, which arrive
// asynchronously when they come from a Secret.
func (c *nsxConnection) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := c.Ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("NSX credentials not available: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type nsxConnection struct {
	Client *nsx.Client
	// Ready returns nil when credentials are available, or why not.
	Ready func() error
}

// connectNSX builds the NSX client for cfg. With Secret authentication it
// starts watching the Secret (until ctx ends) and needs kube.
func connectNSX(ctx context.Context, cfg config.Config, kube kubernetes.Interface, log *zap.Logger, limits nsx.Limits,
	observe func(op string, status, attempts int, d time.Duration), batchSize int) (*nsxConnection, error) {
	tlsConf, err := managerTLS(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("NSXT_ALLOW_UNVERIFIED_SSL=true: the NSX Manager's certificate is not verified; do not use this in production")
	}
	conn := &nsxConnection{Ready: func() error { return nil }}
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
		conn.Ready = creds.Ready
		authn = passwordAuth(cfg, creds, log)
	case config.AuthPassword:
		authn = passwordAuth(cfg, auth.Static{Username: a.Username, Password: a.Password.Reveal()}, log)
	default:
		return nil, fmt.Errorf("no way to authenticate to NSX is configured")
	}
	client, err := nsx.New(nsx.Config{Host: cfg.ManagerURL, TLS: tlsConf, Auth: authn, Limits: limits, Logger: log.Named("nsx"), Observe: observe, BatchSize: batchSize})
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
// pinned manager CA (CSP is a public service; the manager may not be).
func cspHTTPClient(t config.TLSSettings) *http.Client {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if t.RootCAPEM != nil {
		pool.AppendCertsFromPEM(t.RootCAPEM)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // operator's choice, warned
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf, Proxy: http.ProxyFromEnvironment}}
}
