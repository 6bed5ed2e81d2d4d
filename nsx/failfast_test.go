package nsx_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// slowRetries are the production retry settings but for the waits' floor:
// a failure that is retried takes seconds, one that is not, milliseconds.
var slowRetries = nsx.Limits{MaxRetries: 8, RetryWaitMin: 500 * time.Millisecond, RetryWaitMax: 2 * time.Second}

// call makes one Tier1 call and returns its error, its attempts and how long it took.
func call(t *testing.T, cfg nsx.Config) (error, int, time.Duration) {
	t.Helper()
	var attempts int
	cfg.Observe = func(_ string, _, n int, _ time.Duration) { attempts = n }
	c, err := nsx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Tier1(ctx, t1Path)
	return err, attempts, time.Since(start)
}

// TestFailuresNoRetryCanFixFailAtOnce: an untrusted or misnamed
// certificate, in every auth mode and at the VMC token exchange, a host name
// that does not resolve, and refused credentials fail on the first attempt,
// and Explain names the cause and the fix. (Before, session and VMC modes
// wrapped the x509 error, so it was retried for ~50 s and reported as
// "context deadline exceeded".)
func TestFailuresNoRetryCanFixFailAtOnce(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RefreshTokens: map[string]string{"vmc-token": "admin"}})
	user, pass := sim.User()
	trusting := func() *tls.Config { return &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12} }
	untrusting := func() *tls.Config { return &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12} }
	wrongName := func() *tls.Config { c := trusting(); c.ServerName = "nsx.example.com"; return c }
	csp := func(conf *tls.Config, token string) *auth.CSPToken {
		return &auth.CSPToken{AuthHost: sim.Addr(), APIToken: token, Client: &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}}
	}
	static := auth.Static{Username: user, Password: pass}
	cases := []struct {
		name string
		cfg  nsx.Config
		want []string // in Explain's line
	}{
		{"untrusted, basic", nsx.Config{TLS: untrusting(), Auth: auth.Basic{Credentials: static}}, []string{"not trusted", "x509", "NSXT_ROOT_CA_DATA_B64"}},
		{"untrusted, session", nsx.Config{TLS: untrusting(), Auth: &auth.Session{BaseURL: sim.URL(), Credentials: static}}, []string{"NSX Manager's certificate is not trusted", "x509", "NSXT_ROOT_CA_DATA_B64"}},
		{"untrusted, vmc exchange", nsx.Config{TLS: trusting(), Auth: csp(untrusting(), "vmc-token")}, []string{sim.Addr() + "'s certificate is not trusted", "x509", "NSXT_ROOT_CA_DATA_B64"}},
		{"untrusted, vmc manager", nsx.Config{TLS: untrusting(), Auth: csp(trusting(), "vmc-token")}, []string{"not trusted", "x509", "NSXT_ROOT_CA_DATA_B64"}},
		{"wrong name, session", nsx.Config{TLS: wrongName(), Auth: &auth.Session{BaseURL: sim.URL(), Credentials: static}}, []string{"not for the name", "nsx.example.com", "NSXT_MANAGER_HOST"}},
		{"wrong name, vmc exchange", nsx.Config{TLS: trusting(), Auth: csp(wrongName(), "vmc-token")}, []string{"not for the name", "NSXT_VMC_AUTH_HOST"}},
		{"no such host", nsx.Config{Host: "https://nsx..invalid", TLS: trusting(), Auth: auth.Basic{Credentials: static}}, []string{"does not resolve", "nsx..invalid", "NSXT_MANAGER_HOST"}},
		{"wrong password, basic", nsx.Config{TLS: trusting(), Auth: auth.Basic{Credentials: auth.Static{Username: user, Password: "wrong"}}}, []string{"refused the credentials", "HTTP 403", "NSXT_PASSWORD"}},
		{"wrong password, session", nsx.Config{TLS: trusting(), Auth: &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: user, Password: "wrong"}}}, []string{"refused the credentials", "HTTP 403"}},
		{"revoked vmc token", nsx.Config{TLS: trusting(), Auth: csp(trusting(), "revoked")}, []string{"refused the API token", "NSXT_VMC_ACCESS_TOKEN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Host == "" {
				c.cfg.Host = sim.URL()
			}
			c.cfg.Limits = slowRetries
			err, attempts, took := call(t, c.cfg)
			line := nsx.Explain(err)
			t.Logf("after %d attempt(s) in %v: %s", attempts, took.Round(time.Millisecond), line)
			if err == nil || attempts != 1 {
				t.Fatalf("%d attempts, error %v; want one attempt", attempts, err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v is a deadline", err)
			}
			// The controller requeues what may heal (a certificate the NSX admin
			// fixes), not refused credentials; the transport retries neither.
			if refused := strings.Contains(c.name, "password") || strings.Contains(c.name, "revoked"); nsx.IsTemporary(err) == refused {
				t.Errorf("IsTemporary = %v for %v", nsx.IsTemporary(err), err)
			}
			if took > 5*time.Second { // one retry of slowRetries would be 0.25-0.5 s; all of them, seconds
				t.Errorf("took %v", took)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("Explain = %q; want it to say %q", line, w)
				}
			}
			if strings.Contains(line, pass) || strings.Contains(line, "vmc-token") || strings.ContainsAny(line, "\n\r") {
				t.Errorf("Explain = %q: a secret or a line break", line)
			}
		})
	}
}

// TestUnreachableManager: a refused connection is retried for the
// controller (a restarting manager comes back), but with FailFast, as
// one-shot commands set it, fails on the first attempt; a manager that
// accepts connections but never answers fails when the time is up, and is
// explained as such, not as a bare deadline.
func TestUnreachableManager(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused

	quick := nsx.Limits{MaxRetries: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
	err, attempts, _ := call(t, nsx.Config{Host: "https://" + closedAddr, Limits: quick})
	if attempts != 4 || !nsx.IsTemporary(err) {
		t.Fatalf("without FailFast: %d attempts, %v; want 1 + 3 retries of a temporary error", attempts, err)
	}
	failFast := slowRetries
	failFast.FailFast = true
	err, attempts, _ = call(t, nsx.Config{Host: "https://" + closedAddr, Limits: failFast})
	line := nsx.Explain(err)
	if attempts != 1 || !strings.Contains(line, "refused the connection") || !strings.Contains(line, closedAddr) {
		t.Fatalf("with FailFast: %d attempts, Explain %q", attempts, line)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	c, _ := nsx.New(nsx.Config{Host: "https://" + silent.Addr().String(), Limits: failFast})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Tier1(ctx, t1Path)
	if line := nsx.Explain(err); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(line, "no answer from the NSX Manager in time") {
		t.Fatalf("silent manager: %v; Explain %q", err, line)
	}
}

// TestDeadlineNamesTheCause: a caller whose deadline passes while the
// transport retries gets an error that still says why the attempts failed.
func TestDeadlineNamesTheCause(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 503})
	c := newClient(t, sim, nsx.Config{Limits: nsx.Limits{RetryWaitMin: 50 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond, MaxRetries: 100}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Tier1(ctx, t1Path)
	var ae *nsx.APIError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("= %v; want the deadline and the last answer, a 503", err)
	}
	if line := nsx.Explain(err); !strings.Contains(line, "overloaded or unavailable") {
		t.Fatalf("Explain = %q", line)
	}
}
