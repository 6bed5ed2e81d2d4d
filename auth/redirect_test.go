package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// recorder stands where a redirect points: another host, an attacker's or
// a misconfigured proxy's. It records every connection and request that
// reaches it, and which credentials came with them.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	conns int
	seen  []string
}

func newRecorder(t *testing.T, https bool) *recorder {
	r := &recorder{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var creds []string
		for _, h := range []string{"Authorization", "X-XSRF-TOKEN", "csp-auth-token"} {
			if req.Header.Get(h) != "" {
				creds = append(creds, h)
			}
		}
		if c, err := req.Cookie("JSESSIONID"); err == nil && c.Value != "" {
			creds = append(creds, "JSESSIONID")
		}
		for _, f := range []string{"refresh_token", "j_password"} {
			if strings.Contains(string(body), f+"=") {
				creds = append(creds, f)
			}
		}
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			creds = append(creds, "client certificate")
		}
		r.mu.Lock()
		r.seen = append(r.seen, fmt.Sprintf("%s %s with %v", req.Method, req.URL.Path, creds))
		r.mu.Unlock()
	}))
	r.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
		}
	}
	if https {
		// Asks for a client certificate, as a server collecting them would.
		r.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	return r
}

// pool trusts the simulator and, for https, the recorder: a redirect that
// is followed must get through, so the test sees what it would carry.
func (r *recorder) pool(sim *nsxsim.Simulator) *x509.CertPool {
	p := sim.CertPool()
	if r.srv.Certificate() != nil {
		p.AddCert(r.srv.Certificate())
	}
	return p
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns > 0 || len(r.seen) > 0 {
		t.Errorf("the redirect target got %d connections and requests %v", r.conns, r.seen)
	}
}

// TestNoRedirectIsFollowed has the manager (or CSP) answer with a redirect to
// another host at each place credentials travel: API calls in every auth
// mode, the session login, the VMC token exchange and the Management Plane
// client; to a target over http and over https (which trusts nothing less and
// asks for client certificates). Nothing may reach the target, and the error
// names the Location without its query string.
func TestNoRedirectIsFollowed(t *testing.T) {
	const token = "vmc-api-token"
	type mode struct {
		name  string
		authn func(sim *nsxsim.Simulator, pool *x509.CertPool) (nsx.Authenticator, func(*tls.Config))
		// where a redirect can meet this mode's credentials: method and path regexp
		at map[string][2]string
	}
	api := [2]string{"GET", "^/policy/api/v1/infra/tier-1s/"}
	mp := [2]string{"GET", "^/api/v1/node$"}
	modes := []mode{
		{"basic", func(sim *nsxsim.Simulator, _ *x509.CertPool) (nsx.Authenticator, func(*tls.Config)) {
			u, p := sim.User()
			return auth.Basic{Credentials: auth.Static{Username: u, Password: p}}, nil
		}, map[string][2]string{"api": api, "management plane": mp}},
		{"remote", func(sim *nsxsim.Simulator, _ *x509.CertPool) (nsx.Authenticator, func(*tls.Config)) {
			return auth.Basic{Credentials: auth.Static{Username: "bob@corp.example", Password: "vidm"}, Remote: true}, nil
		}, map[string][2]string{"api": api}},
		{"session", func(sim *nsxsim.Simulator, _ *x509.CertPool) (nsx.Authenticator, func(*tls.Config)) {
			u, p := sim.User()
			return &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: u, Password: p}}, nil
		}, map[string][2]string{"api": api, "login": {"POST", "^/api/session/create$"}, "management plane": mp}},
		{"vmc", func(sim *nsxsim.Simulator, pool *x509.CertPool) (nsx.Authenticator, func(*tls.Config)) {
			return &auth.CSPToken{AuthHost: sim.Addr(), APIToken: token,
				Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}, nil
		}, map[string][2]string{"api": api, "token exchange": {"POST", "^" + auth.CSPAuthorizePath + "$"}, "management plane": mp}},
		{"client certificate", func(sim *nsxsim.Simulator, _ *x509.CertPool) (nsx.Authenticator, func(*tls.Config)) {
			certPEM, keyPEM, err := sim.IssueClientCert("t1route")
			if err != nil {
				t.Fatal(err)
			}
			cert := &auth.ClientCert{CertPEM: certPEM, KeyPEM: keyPEM}
			return nil, cert.ConfigureTLS
		}, map[string][2]string{"api": api, "management plane": mp}},
	}
	for _, m := range modes {
		for where, at := range m.at {
			for _, scheme := range []string{"http", "https"} {
				for _, status := range []int{302, 307} {
					t.Run(fmt.Sprintf("%s/%s/%s/%d", m.name, where, scheme, status), func(t *testing.T) {
						rec := newRecorder(t, scheme == "https")
						sim := nsxsim.StartTest(t, nsxsim.Options{RemoteUsers: map[string]string{"bob@corp.example": "vidm"},
							RefreshTokens: map[string]string{token: "admin"}})
						target := rec.srv.URL + "/collect"
						sim.AddFault(nsxsim.FaultRule{Method: at[0], Path: at[1], Status: status, Location: target + "?session=s3cr3t-query#frag"})
						pool := rec.pool(sim)
						authn, tlsHook := m.authn(sim, pool)
						c := newClient(t, sim, clientOpts{authn: authn, limits: nsx.Limits{MaxRetries: 2}, tls: func(conf *tls.Config) {
							conf.RootCAs = pool
							if tlsHook != nil {
								tlsHook(conf)
							}
						}})
						// Bounded: a client that follows redirects may loop (a followed
						// login redirect logs in again, and is redirected again).
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						var err error
						if where == "management plane" {
							_, err = c.ManagerStatus(ctx)
						} else {
							_, err = c.Tier1(ctx, t1Path)
						}
						rec.check(t)
						var re *nsx.RedirectError
						if !errors.As(err, &re) || re.Location != target || re.StatusCode != status {
							t.Fatalf("error = %v; want a *nsx.RedirectError naming %s", err, target)
						}
						if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(nsx.Explain(err), "s3cr3t") {
							t.Errorf("the error echoes the Location's query: %v", err)
						}
						if !strings.Contains(nsx.Explain(err), "redirect") {
							t.Errorf("Explain = %q", nsx.Explain(err))
						}
						if n := sim.Stats().Faults["redirect"]; n != 1 {
							t.Errorf("the redirect was met %d times; refusing it is final, not retried", n)
						}
					})
				}
			}
		}
	}
}

// A redirect to the manager itself is refused too: NSX never sends one,
// and following it would turn a PATCH into a GET.
func TestSameHostRedirectIsRefused(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	sim.AddFault(nsxsim.FaultRule{Method: "GET", Status: 301, Location: "/policy/api/v1/infra/tier-1s/other?x=1"})
	u, p := sim.User()
	c := newClient(t, sim, clientOpts{authn: auth.Basic{Credentials: auth.Static{Username: u, Password: p}}})
	_, err := c.Tier1(context.Background(), t1Path)
	var re *nsx.RedirectError
	if !errors.As(err, &re) || re.Location != sim.URL()+"/policy/api/v1/infra/tier-1s/other" {
		t.Fatalf("error = %v", err)
	}
	if n := sim.Stats().Requests; n != 1 {
		t.Fatalf("the simulator saw %d requests; the redirect was followed", n)
	}
}

// HTTPClient, handed out for calls the SDK lacks, adds credentials to what
// it sends: it must send nothing anywhere but the manager.
func TestHTTPClientSendsToTheManagerOnly(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		rec := newRecorder(t, scheme == "https")
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		u, p := sim.User()
		pool := rec.pool(sim)
		c := newClient(t, sim, clientOpts{authn: auth.Basic{Credentials: auth.Static{Username: u, Password: p}}, tls: func(conf *tls.Config) { conf.RootCAs = pool }})
		resp, err := c.HTTPClient().Get(rec.srv.URL + "/api/v1/node")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: a request for another host was sent", scheme)
		}
		rec.check(t)
	}
}
