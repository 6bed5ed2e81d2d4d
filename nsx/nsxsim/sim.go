// Package nsxsim is an NSX Manager simulator: an HTTPS server holding an
// in-memory Policy registry behind a table of handlers, with NSX's wire format,
// errors, authentication, rate limits, latency and injectable faults. The
// official SDK's clients work against it unchanged.
//
// In tests, one call starts it on a random loopback port:
//
//	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{"t1"}})
package nsxsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Simulator. The zero value is NSX's defaults with one
// Tier-1 "t1-routable" and user admin with a random password.
type Options struct {
	// Listen is the address to listen on; default 127.0.0.1:0.
	Listen string
	// Tier1s exist at start, each advertising TIER1_STATIC_ROUTES and TIER1_CONNECTED.
	Tier1s []string
	// Routers are more routers created at start, by policy path: Tier-1s
	// in projects (/orgs/<org>/projects/<p>/infra/tier-1s/<id>, advertising
	// as Tier1s do) and VPCs (/orgs/<org>/projects/<p>/vpcs/<vpc>, connected
	// to /infra/tier-0s/t0). Their projects are created with them.
	Routers []string
	// ProjectUsers limits users (of Users or RemoteUsers) to one project
	// each, by user name: project path (/orgs/<org>/projects/<p>). Such a
	// user may call only inside its project's tree and PATCH /org-root for
	// its project's VPCs; anything else is refused with HTTP 403, error_code
	// 401, as NSX refuses a role that does not reach the object.
	ProjectUsers map[string]string
	// Users are local users (basic and session auth); default admin with a
	// random password (also when other ways to authenticate are configured).
	Users map[string]string
	// RemoteUsers are vIDM/LDAP users (Authorization: Remote, and session auth).
	RemoteUsers map[string]string
	// RefreshTokens are VMC API tokens accepted by the CSP endpoint, mapped to the user they act as.
	RefreshTokens map[string]string
	// TokenLifetime is the lifetime of CSP access tokens; default 1800 s as CSP.
	TokenLifetime time.Duration
	// SessionIdleTimeout expires idle NSX sessions (403, error_code 98); default 30 min.
	SessionIdleTimeout time.Duration
	// ClientCAs, if set, verifies client certificates; a verified certificate
	// authenticates as its Subject CommonName. IssueClientCert fills it as needed.
	ClientCAs *x509.CertPool
	// RateLimit is requests per second per client; default 100 (NSX's). Negative disables.
	RateLimit int
	// ClientConcurrency is concurrent requests per client; default 40. Negative disables.
	ClientConcurrency int
	// GlobalConcurrency is concurrent requests overall; default 199. Negative disables.
	GlobalConcurrency int
	// Latency is added to every API call; LatencyPerChild to each child of a
	// hierarchical call (a model of NSX's processing cost for benchmarks).
	Latency, LatencyPerChild time.Duration
	// RealizeDelay is how long a changed route reports IN_PROGRESS before
	// REALIZED (and is missing from the Tier-1's forwarding table).
	RealizeDelay time.Duration
	// PrincipalIdentities are protected principal identities, by name (the
	// CommonName of their client certificate; IssueClientCert makes one):
	// what they create is protected as NSX protects it (see protection.go).
	// Other certificate identities are unprotected principals.
	PrincipalIdentities []string
	// SearchLag is how long a write takes to reach the search index (NSX's
	// lags by seconds); default 0: search sees every write at once.
	SearchLag time.Duration
	// Faults are injected from the start; more can be added with AddFault.
	Faults []FaultRule
	// Version is what GET /api/v1/node reports; default "4.1.2.0.0.22589037".
	Version string
	// Logf, if set, receives one line per request (method, path, status, client).
	Logf func(format string, args ...any)
	// Now overrides the clock (tests of expiry); default time.Now.
	Now func() time.Time
}

// DefaultTier1 is the Tier-1 created when Options.Tier1s is empty.
const DefaultTier1 = "t1-routable"

// Simulator is a running NSX Manager simulator.
type Simulator struct {
	opts     Options
	store    *store
	ca       *certAuthority
	listener net.Listener
	server   *http.Server
	mux      *http.ServeMux

	auth   *authenticator
	limits *limiter
	faults *faultTable

	// realizeErrors holds, by "<router path>/<route id>", why the netns realizer
	// could not make a route real; the realized state shows it as ERROR.
	realizeErrors sync.Map

	mu            sync.Mutex
	clusterStatus string
	stats         counters
	principals    map[string]bool // protected principal identities
	kernel        kernelTable     // the realizer's kernel table, when realizing in a netns
	edgeNode      string          // the simulated edge node's ID, in forwarding tables

	closeOnce sync.Once
}

// New builds a simulator; Start makes it listen.
func New(opts Options) (*Simulator, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if len(opts.Tier1s) == 0 {
		opts.Tier1s = []string{DefaultTier1}
	}
	if len(opts.Users) == 0 {
		opts.Users = map[string]string{"admin": randomSecret(18)}
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = 1800 * time.Second
	}
	if opts.SessionIdleTimeout == 0 {
		opts.SessionIdleTimeout = 30 * time.Minute
	}
	opts.RateLimit = defaultLimit(opts.RateLimit, 100)
	opts.ClientConcurrency = defaultLimit(opts.ClientConcurrency, 40)
	opts.GlobalConcurrency = defaultLimit(opts.GlobalConcurrency, 199)
	if opts.Version == "" {
		opts.Version = "4.1.2.0.0.22589037"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SearchLag < 0 {
		return nil, fmt.Errorf("nsxsim: search lag %s is negative", opts.SearchLag)
	}
	principals := map[string]bool{}
	for _, name := range opts.PrincipalIdentities {
		if err := validPrincipalName(name); err != nil {
			return nil, fmt.Errorf("nsxsim: %w", err)
		}
		principals[name] = true
	}
	ca, err := newCertAuthority("nsxsim CA")
	if err != nil {
		return nil, err
	}
	s := &Simulator{
		opts:          opts,
		store:         newStore(opts.Now, opts.SearchLag),
		ca:            ca,
		principals:    principals,
		edgeNode:      newUUID(),
		clusterStatus: "STABLE",
		limits:        newLimiter(opts.RateLimit, opts.ClientConcurrency, opts.GlobalConcurrency),
		faults:        newFaultTable(opts.Faults),
	}
	s.auth = newAuthenticator(&s.opts)
	s.stats.clearMaps()
	for _, id := range opts.Tier1s {
		if err := validID(id); err != nil {
			return nil, fmt.Errorf("tier-1 %q: %w", id, err)
		}
	}
	for _, path := range append(tier1Paths(opts.Tier1s), opts.Routers...) {
		if _, err := s.store.addRouter(path, systemCaller); err != nil {
			return nil, fmt.Errorf("nsxsim: router %q: %w", path, err)
		}
	}
	for user, project := range opts.ProjectUsers {
		if _, err := parseRouter(project + "/vpcs/x"); err != nil {
			return nil, fmt.Errorf("nsxsim: project user %q: %q is not a project path /orgs/<org>/projects/<p>", user, project)
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

func defaultLimit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0 // disabled
	}
	return v
}

// Start listens and serves in the background.
func (s *Simulator) Start() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("nsxsim: listen on %s: %w", s.opts.Listen, err)
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	cert, err := s.ca.issueServer(host)
	if err != nil {
		ln.Close()
		return err
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	tlsConf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := tlsConf.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = s.auth.clientCAs()
		return c, nil
	}
	s.listener = tls.NewListener(ln, tlsConf)
	s.server = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only, as NSX's reverse proxy answers; it also lets a fault
		// rule reset the connection (hijacking needs HTTP/1).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	if s.opts.Logf != nil {
		s.server.ErrorLog = log.New(logfWriter(s.opts.Logf), "", 0)
	}
	go s.server.Serve(s.listener) //nolint:errcheck // ends with ErrServerClosed on Close
	return nil
}

// Close stops serving and drops open connections.
func (s *Simulator) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if e := s.server.Shutdown(ctx); e != nil && !errors.Is(e, context.DeadlineExceeded) {
				err = e
			}
			s.server.Close()
		}
	})
	return err
}

// Addr is host:port the simulator listens on.
func (s *Simulator) Addr() string { return s.listener.Addr().String() }

// URL is the manager's base URL, https://host:port.
func (s *Simulator) URL() string { return "https://" + s.Addr() }

// CACertPEM is the PEM of the CA that signed the server certificate.
func (s *Simulator) CACertPEM() []byte { return s.ca.certPEM }

// CertPool holds the simulator's CA, for clients.
func (s *Simulator) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.ca.certPEM)
	return p
}

// User returns a local user and password (the first one, or admin).
func (s *Simulator) User() (string, string) {
	if p, ok := s.opts.Users["admin"]; ok {
		return "admin", p
	}
	for u, p := range s.opts.Users {
		return u, p
	}
	return "", ""
}

// IssueClientCert returns a client certificate (and its key, PEM) signed by
// the simulator's client CA, authenticating as principal cn (protected if cn
// is one of Options.PrincipalIdentities or was added by AddPrincipalIdentity).
// It makes the simulator trust that CA.
func (s *Simulator) IssueClientCert(cn string) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, err = s.ca.issueClient(cn)
	if err == nil {
		s.auth.trustClientCA(s.ca.certPEM)
	}
	return certPEM, keyPEM, err
}

// AddPrincipalIdentity registers a protected principal identity and returns
// its client certificate and key (PEM), as an NSX admin registering a
// certificate with is_protected would.
func (s *Simulator) AddPrincipalIdentity(name string) (certPEM, keyPEM []byte, err error) {
	if err := validPrincipalName(name); err != nil {
		return nil, nil, fmt.Errorf("nsxsim: %w", err)
	}
	s.mu.Lock()
	s.principals[name] = true
	s.mu.Unlock()
	return s.IssueClientCert(name)
}

// SetClusterStatus sets what GET /api/v1/cluster/status reports (STABLE, DEGRADED, UNSTABLE).
func (s *Simulator) SetClusterStatus(status string) {
	s.mu.Lock()
	s.clusterStatus = status
	s.mu.Unlock()
}

// ServeHTTP runs a request through NSX's front end: faults, authentication,
// limits, latency, then the API handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/nsxsim/") { // the test API: not NSX, not counted
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	client := ""
	s.stats.begin(r.Method)
	defer func() {
		s.stats.record(rec.status, rec.hijacked)
		if s.opts.Logf != nil {
			s.opts.Logf("%s %s -> %d client=%q in %s", r.Method, r.URL.Path, rec.status, client, time.Since(start).Round(time.Microsecond))
		}
	}()

	if s.faults.inject(rec, r, &s.stats) {
		return
	}
	if isUnauthenticated(r) {
		s.mux.ServeHTTP(rec, r)
		return
	}
	id, err := s.auth.authenticate(r)
	if err != nil {
		writeError(rec, err.status, err.code, err.msg)
		return
	}
	client = id
	release, lerr := s.limits.acquire(id)
	if lerr != nil {
		s.stats.addLimited(lerr.status)
		writeError(rec, lerr.status, lerr.code, lerr.msg)
		return
	}
	defer release()
	if s.opts.Latency > 0 && !sleepCtx(r.Context(), s.opts.Latency) {
		return
	}
	c := s.callerOf(id, r)
	if !authorized(c, r) {
		notAuthorized(rec, c, r)
		return
	}
	s.mux.ServeHTTP(rec, r.WithContext(withCaller(r.Context(), c)))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type callerKey struct{}

func withCaller(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerFrom is who made an authenticated API request.
func callerFrom(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// Callers of changes made through the Go test API and at start.
var (
	systemCaller    = caller{name: "system", admin: true}
	outOfBandCaller = caller{name: "out-of-band", admin: true}
)

// statusRecorder remembers the status written, for stats and logs.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// logfWriter adapts a Logf function to an io.Writer for net/http's ErrorLog.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
