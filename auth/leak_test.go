package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"go.uber.org/zap"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// TestNoSecretInLogsOrErrors runs each mode through success, expiry and
// failure with every log at debug level (the SDK's own included) and checks
// no secret material appears in any log line or returned error: passwords,
// API and access tokens, session IDs, XSRF tokens, private keys.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	const (
		password    = "Pa55-word-S3cret"
		newPassword = "R0tated-S3cret-pw"
		wrongPass   = "Wr0ng-S3cret-pw"
		remotePass  = "vIDM-S3cret-pw"
		apiToken    = "vmc-API-token-S3cret"
	)
	sink := &logSink{}
	log := newLogger(sink)
	nsx.RouteSDKLogs(log)
	defer nsx.RouteSDKLogs(zap.NewNop())
	clock := newFakeClock() // moved by hand through token lifetimes
	sim := nsxsim.StartTest(t, nsxsim.Options{
		Users: map[string]string{"admin": password}, RemoteUsers: map[string]string{"bob@corp": remotePass},
		RefreshTokens: map[string]string{apiToken: "admin"}, TokenLifetime: time.Second, Now: clock.Now,
	})
	certPEM, keyPEM, _ := sim.IssueClientCert("t1route")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []string
	run := func(authn nsx.Authenticator, cert *auth.ClientCert, calls int, between func(i int)) {
		o := clientOpts{authn: authn, log: log, limits: nsx.Limits{MaxRetries: 1, RetryWaitMin: time.Millisecond}}
		if cert != nil {
			o.tls = cert.ConfigureTLS
		}
		c := newClient(t, sim, o)
		for i := range calls {
			if between != nil {
				between(i)
			}
			if _, err := c.Tier1(ctx, t1Path); err != nil {
				errs = append(errs, err.Error())
			}
			if _, err := c.ListRoutes(ctx, t1Path); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	static := auth.Static{Username: "admin", Password: password}
	run(auth.Basic{Credentials: static}, nil, 2, nil)
	run(auth.Basic{Credentials: auth.Static{Username: "admin", Password: wrongPass}}, nil, 1, nil)
	run(auth.Basic{Credentials: auth.Static{Username: "bob@corp", Password: remotePass}, Remote: true}, nil, 1, nil)
	run(&auth.Session{BaseURL: sim.URL(), Credentials: static, Logger: log}, nil, 4, func(i int) {
		if i == 2 {
			sim.ExpireSessions()
		}
	})
	run(&auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: "admin", Password: wrongPass}, Logger: log}, nil, 1, nil)
	vmc := cspFor(sim, apiToken, log)
	vmc.Now = clock.Now
	run(vmc, nil, 3, func(i int) { clock.Advance(450 * time.Millisecond) })
	run(cspFor(sim, "not-"+apiToken, log), nil, 1, nil)
	run(nil, &auth.ClientCert{CertPEM: certPEM, KeyPEM: keyPEM, Logger: log}, 1, nil)

	kube := fake.NewSimpleClientset(credSecret("admin", password))
	creds := &auth.SecretCredentials{Client: kube, Namespace: "t1route", Name: "nsx-credentials", Logger: log}
	if err := creds.Run(ctx); err != nil {
		t.Fatal(err)
	}
	run(&auth.Session{BaseURL: sim.URL(), Credentials: creds, Logger: log}, nil, 2, func(i int) {
		if i == 1 {
			sim.SetPassword("admin", newPassword)
			kube.CoreV1().Secrets("t1route").Update(ctx, credSecret("admin", newPassword), metav1.UpdateOptions{})
			eventually(t, "rotation", func() bool { _, p, _, _ := creds.Get(); return p == newPassword })
		}
	})

	logs := sink.String()
	if !strings.Contains(logs, "logged in to NSX") || !strings.Contains(logs, "VMC access token") {
		t.Fatalf("the run did not log what it should have; logs:\n%s", logs)
	}
	if len(errs) == 0 {
		t.Fatal("no failure was exercised")
	}
	secrets := append([]string{password, newPassword, wrongPass, remotePass, apiToken,
		strings.Split(string(keyPEM), "\n")[1]}, sim.IssuedSecrets()...)
	everything := logs + "\n" + strings.Join(errs, "\n")
	for _, s := range secrets {
		if strings.Contains(everything, s) {
			t.Errorf("secret %.4s… appears in logs or errors", s)
		}
	}
	t.Logf("%d log bytes and %d errors checked against %d secrets", len(logs), len(errs), len(secrets))
}
