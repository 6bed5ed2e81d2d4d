package auth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

var t1Path = nsx.MustRouterPath("/infra/tier-1s/t1-routable")

func TestMain(m *testing.M) {
	nsx.RouteSDKLogs(zap.NewNop())
	os.Exit(m.Run())
}

// logSink captures every log line, encoded as JSON, fields included.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}
func (s *logSink) Sync() error { return nil }
func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func newLogger(sink *logSink) *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), sink, zapcore.DebugLevel))
}

type clientOpts struct {
	authn  nsx.Authenticator
	tls    func(*tls.Config)
	log    *zap.Logger
	limits nsx.Limits
}

func newClient(t *testing.T, sim *nsxsim.Simulator, o clientOpts) *nsx.Client {
	t.Helper()
	conf := &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}
	if o.tls != nil {
		o.tls(conf)
	}
	c, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: conf, Auth: o.authn, Logger: o.log, Limits: o.limits})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// burst sends n concurrent calls and returns how many failed, and the first error.
func burst(c *nsx.Client, n int) (int, error) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Value
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Tier1(context.Background(), t1Path); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	err, _ := first.Load().(error)
	return int(failed.Load()), err
}

// wide lets a burst reach the auth layer all at once.
var wide = nsx.Limits{RateLimit: 1e6, MaxInFlight: 200, MaxRetries: -1}

func TestSessionOneLoginForABurst(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RateLimit: -1, ClientConcurrency: -1, GlobalConcurrency: -1, Latency: 5 * time.Millisecond})
	user, pass := sim.User()
	c := newClient(t, sim, clientOpts{authn: &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: user, Password: pass}}, limits: wide})
	if failed, err := burst(c, 200); failed != 0 {
		t.Fatalf("%d of 200 calls failed: %v", failed, err)
	}
	if st := sim.Stats(); st.Logins != 1 {
		t.Fatalf("200 concurrent calls made %d logins, want 1", st.Logins)
	}
}

func TestSessionExpiryMidRunFailsNothing(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RateLimit: -1})
	user, pass := sim.User()
	c := newClient(t, sim, clientOpts{authn: &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: user, Password: pass}},
		limits: nsx.Limits{RateLimit: 1e6, MaxRetries: -1}}) // no transport retries: only re-login may save a call
	for i := range 300 {
		if i%50 == 25 {
			sim.ExpireSessions()
		}
		if _, err := c.Tier1(context.Background(), t1Path); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if st := sim.Stats(); st.Logins != 7 {
		t.Fatalf("%d logins for 6 expiries, want 7", st.Logins)
	}
	// An idle timeout expires the session too; the simulator's clock is
	// moved past it, and, as a control, just short of it.
	clock := newFakeClock()
	idle := nsxsim.StartTest(t, nsxsim.Options{SessionIdleTimeout: 30 * time.Minute, Now: clock.Now})
	user, pass = idle.User()
	c = newClient(t, idle, clientOpts{authn: &auth.Session{BaseURL: idle.URL(), Credentials: auth.Static{Username: user, Password: pass}}, limits: nsx.Limits{MaxRetries: -1}})
	for _, idleFor := range []time.Duration{0, 29 * time.Minute, 31 * time.Minute, 31 * time.Minute} {
		clock.Advance(idleFor)
		if _, err := c.Tier1(context.Background(), t1Path); err != nil {
			t.Fatal(err)
		}
	}
	if st := idle.Stats(); st.Logins != 3 {
		t.Fatalf("%d logins across 2 idle expiries, want 3", st.Logins)
	}
}

func TestSessionWrongPasswordIsTyped(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	c := newClient(t, sim, clientOpts{authn: &auth.Session{BaseURL: sim.URL(), Credentials: auth.Static{Username: "admin", Password: "Wr0ng-p4ss"}}})
	_, err := c.Tier1(context.Background(), t1Path)
	var e *nsx.APIError
	if !errors.As(err, &e) || e.StatusCode != 403 || e.ErrorCode != 403 || strings.Contains(err.Error(), "Wr0ng-p4ss") {
		t.Fatalf("= %v", err)
	}
}

func TestBasicAndRemote(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": "pw"}, RemoteUsers: map[string]string{"bob@corp.example": "vidm"}})
	for name, a := range map[string]auth.Basic{
		"basic":  {Credentials: auth.Static{Username: "admin", Password: "pw"}},
		"remote": {Credentials: auth.Static{Username: "bob@corp.example", Password: "vidm"}, Remote: true},
	} {
		if _, err := newClient(t, sim, clientOpts{authn: a}).Tier1(context.Background(), t1Path); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrong := auth.Basic{Credentials: auth.Static{Username: "bob@corp.example", Password: "vidm"}} // a vIDM user without Remote
	if _, err := newClient(t, sim, clientOpts{authn: wrong}).Tier1(context.Background(), t1Path); err == nil {
		t.Error("a vIDM user was accepted with Basic")
	}
	if sim.Stats().Logins != 0 {
		t.Error("per-request auth opened a session")
	}
}

func cspFor(sim *nsxsim.Simulator, token string, log *zap.Logger) *auth.CSPToken {
	return &auth.CSPToken{AuthHost: sim.Addr(), APIToken: token, Logger: log,
		Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool()}}}}
}

func TestVMCTokenRefreshAcrossExpiries(t *testing.T) {
	// Tokens live 30 min (as CSP's): refreshed at 24 min, so calls every
	// minute for 2 h (on a clock the test moves, shared by CSP and NSX)
	// need an exchange at 0, 24, 48, 72 and 96 min, and none fails.
	clock := newFakeClock()
	sim := nsxsim.StartTest(t, nsxsim.Options{RefreshTokens: map[string]string{"vmc-api-token": "admin"}, TokenLifetime: 30 * time.Minute, RateLimit: -1, Now: clock.Now})
	csp := cspFor(sim, "vmc-api-token", nil)
	csp.Now = clock.Now
	c := newClient(t, sim, clientOpts{authn: csp, limits: nsx.Limits{MaxRetries: -1, RateLimit: 1e6}})
	for minute := range 120 {
		if _, err := c.Tier1(context.Background(), t1Path); err != nil {
			t.Fatalf("call at minute %d: %v", minute, err)
		}
		clock.Advance(time.Minute)
	}
	if ex := sim.Stats().TokenExchanges; ex != 5 {
		t.Fatalf("%d exchanges in 2 h of 30 min tokens refreshed at 80%%, want 5", ex)
	}
	// A token NSX stops accepting early is replaced at once.
	before := sim.Stats().TokenExchanges
	sim.ExpireTokens()
	if _, err := c.Tier1(context.Background(), t1Path); err != nil {
		t.Fatalf("after the token was revoked: %v", err)
	}
	if ex := sim.Stats().TokenExchanges; ex != before+1 {
		t.Fatalf("revocation caused %d exchanges, want 1", ex-before)
	}
}

func TestVMCOneExchangeForABurst(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RefreshTokens: map[string]string{"vmc-api-token": "admin"}, RateLimit: -1, ClientConcurrency: -1, GlobalConcurrency: -1})
	c := newClient(t, sim, clientOpts{authn: cspFor(sim, "vmc-api-token", nil), limits: wide})
	if failed, err := burst(c, 200); failed != 0 {
		t.Fatalf("%d of 200 calls failed: %v", failed, err)
	}
	if ex := sim.Stats().TokenExchanges; ex != 1 {
		t.Fatalf("200 concurrent calls made %d exchanges, want 1", ex)
	}
	bad := newClient(t, sim, clientOpts{authn: cspFor(sim, "revoked-token", nil)})
	_, err := bad.Tier1(context.Background(), t1Path)
	if err == nil || !strings.Contains(err.Error(), "NSXT_VMC_ACCESS_TOKEN") || strings.Contains(err.Error(), "revoked-token") {
		t.Fatalf("bad token: %v", err)
	}
}

func TestClientCertificate(t *testing.T) {
	var mu sync.Mutex
	var clients []string
	sim := nsxsim.StartTest(t, nsxsim.Options{Logf: func(format string, args ...any) {
		if len(args) >= 4 {
			mu.Lock()
			clients = append(clients, args[3].(string))
			mu.Unlock()
		}
	}})
	certA, keyA, _ := sim.IssueClientCert("t1route-a")
	cert := &auth.ClientCert{CertPEM: certA, KeyPEM: keyA}
	if err := cert.Load(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, sim, clientOpts{tls: cert.ConfigureTLS})
	if _, err := c.Tier1(context.Background(), t1Path); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last := clients[len(clients)-1]
	mu.Unlock()
	if last != "principal:t1route-a" {
		t.Fatalf("authenticated as %q, want the certificate's principal", last)
	}

	// From files, re-read when they change on disk.
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, certA, 0o600)
	os.WriteFile(keyFile, keyA, 0o600)
	fromFiles := &auth.ClientCert{CertFile: certFile, KeyFile: keyFile}
	if err := fromFiles.Load(); err != nil {
		t.Fatal(err)
	}
	certB, keyB, _ := sim.IssueClientCert("t1route-b")
	os.WriteFile(certFile, certB, 0o600)
	os.WriteFile(keyFile, keyB, 0o600)
	later := time.Now().Add(time.Minute) // a distinct modification time, whatever the file system's granularity
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	c = newClient(t, sim, clientOpts{tls: fromFiles.ConfigureTLS}) // a new connection: a new handshake
	if _, err := c.Tier1(context.Background(), t1Path); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last = clients[len(clients)-1]
	mu.Unlock()
	if last != "principal:t1route-b" {
		t.Fatalf("after rotation authenticated as %q, want t1route-b", last)
	}
	// A half-written pair keeps the previous one.
	os.WriteFile(keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\ngarbage\n"), 0o600)
	if err := fromFiles.Load(); err != nil {
		t.Fatalf("a broken rotation made the certificate unusable: %v", err)
	}
}

func TestParseKeyPairErrors(t *testing.T) {
	sim, _ := nsxsim.New(nsxsim.Options{})
	certA, keyA, _ := sim.IssueClientCert("a")
	_, keyB, _ := sim.IssueClientCert("b")
	cases := map[string][2][]byte{
		"cert not PEM":       {[]byte("hello"), keyA},
		"key is a cert":      {certA, certA},
		"cert is a key":      {keyA, keyA},
		"key does not match": {certA, keyB},
		"key not PEM":        {certA, []byte("nope")},
	}
	for name, c := range cases {
		_, err := auth.ParseKeyPair(c[0], c[1])
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "PRIVATE KEY-----") || strings.Contains(err.Error(), string(keyA[40:60])) {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	if _, err := auth.ParseKeyPair(certA, keyA); err != nil {
		t.Errorf("a good pair: %v", err)
	}
}

func tlsFor(sim *nsxsim.Simulator) *tls.Config {
	return &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}
}
