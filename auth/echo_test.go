package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// A manager or proxy that quotes the request in its error answers (its
// headers, its form body) must not get the credentials into t1route's
// errors, their explanations, or the NSX messages the controller puts in
// Events and node conditions: in every authentication mode, for an API
// call, the session login and the VMC token exchange.
func TestNoSecretInEchoedErrors(t *testing.T) {
	const (
		password   = "Pa55-word-S3cret"
		remotePass = "vIDM-S3cret-pw"
		apiToken   = "vmc-API-token-S3cret-0123456789"
	)
	routes := nsxsim.FaultRule{Path: "/static-routes", Echo: true}
	login := nsxsim.FaultRule{Path: "^/api/session/create$", Echo: true, Status: 403}
	exchange := nsxsim.FaultRule{Path: "/csp/gateway/", Echo: true, Status: 400}
	type mode struct {
		name  string
		fault nsxsim.FaultRule
		authn func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert)
	}
	static := auth.Static{Username: "admin", Password: password}
	modes := []mode{
		{"basic", routes, func(*nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return auth.Basic{Credentials: static}, nil
		}},
		{"remote", routes, func(*nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return auth.Basic{Credentials: auth.Static{Username: "bob@corp", Password: remotePass}, Remote: true}, nil
		}},
		{"session", routes, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return &auth.Session{BaseURL: sim.URL(), Credentials: static}, nil
		}},
		{"session login", login, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return &auth.Session{BaseURL: sim.URL(), Credentials: static}, nil
		}},
		{"session from a Secret", routes, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			creds := &auth.SecretCredentials{Client: fake.NewSimpleClientset(credSecret("admin", password)), Namespace: "t1route", Name: "nsx-credentials"}
			if err := creds.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			return &auth.Session{BaseURL: sim.URL(), Credentials: creds}, nil
		}},
		{"vmc token", routes, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return cspFor(sim, apiToken, nil), nil
		}},
		{"vmc token exchange", exchange, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			return cspFor(sim, apiToken, nil), nil
		}},
		{"client certificate", routes, func(sim *nsxsim.Simulator) (nsx.Authenticator, *auth.ClientCert) {
			certPEM, keyPEM, _ := sim.IssueClientCert("t1route")
			return nil, &auth.ClientCert{CertPEM: certPEM, KeyPEM: keyPEM}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": password}, RemoteUsers: map[string]string{"bob@corp": remotePass},
				RefreshTokens: map[string]string{apiToken: "admin"}, Faults: []nsxsim.FaultRule{m.fault}})
			authn, cert := m.authn(sim)
			o := clientOpts{authn: authn, limits: nsx.Limits{MaxRetries: -1, RetryWaitMin: time.Millisecond}}
			if cert != nil {
				o.tls = cert.ConfigureTLS
			}
			c := newClient(t, sim, o)
			ctx := context.Background()
			_, err := c.ListRoutes(ctx, t1Path)
			if err == nil {
				t.Fatal("the echoing answer did not fail the call")
			}
			texts := []string{err.Error(), nsx.Explain(err)}
			var ae *nsx.APIError
			if errors.As(err, &ae) { // what the controller puts in Events and conditions
				texts = append(texts, ae.Message, ae.Details)
				for _, r := range ae.RelatedErrors {
					texts = append(texts, r.Message)
				}
			}
			all := strings.Join(texts, "\n")
			if m.fault.Path == routes.Path && !strings.Contains(all, "static-routes") {
				t.Fatalf("the error does not say what failed:\n%s", all)
			}
			secrets := append([]string{password, remotePass, apiToken,
				base64.StdEncoding.EncodeToString([]byte("admin:" + password)),
				base64.StdEncoding.EncodeToString([]byte("bob@corp:" + remotePass))}, sim.IssuedSecrets()...)
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("secret %.6s… is in the error:\n%s", s, all)
				}
			}
			if !strings.Contains(all, nsx.Redacted) && m.name != "client certificate" {
				t.Errorf("nothing was redacted: did the echo happen?\n%s", all)
			}
		})
	}
}
