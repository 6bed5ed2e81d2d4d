package nsxsim

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// NSX error codes the simulator answers with.
const (
	CodeBadCredentials = 403 // wrong user, password, token or certificate
	CodeSessionExpired = 98  // session cookie unknown, expired or XSRF token wrong
	CodeRateLimited    = 102 // per-client request rate or concurrency exceeded
	CodeServerBusy     = 503 // global concurrency exceeded
	CodeNotFound       = 600 // object or path not found
	CodeInvalid        = 255 // field-level validation errors
	CodeRevision       = 604 // _revision mismatch
	CodeInternal       = 99  // injected internal error
	CodeNotAuthorized  = 401 // the caller's role does not allow the request (with HTTP 403)
)

type apiErr struct {
	status, code int
	msg          string
}

// principalPrefix marks a client identity authenticated by certificate (a
// principal identity), so that it never shares limits with a user of that name.
const principalPrefix = "principal:"

const badCredentials = "The credentials were incorrect or the account specified has been locked."

// authenticator decides who a request is, the ways NSX does: a verified
// client certificate, a CSP access token, a session cookie with its XSRF
// token, or an Authorization header (Basic for local users, Remote for vIDM).
type authenticator struct {
	opts *Options

	mu       sync.Mutex
	caPool   *x509.CertPool
	sessions map[string]*session // by JSESSIONID
	tokens   map[string]token    // CSP access tokens
	logins   int
	exchange int
	issued   []string // every session ID, XSRF token and access token handed out
}

type session struct {
	user, xsrf string
	lastUsed   time.Time
}

type token struct {
	user    string
	expires time.Time
}

func newAuthenticator(opts *Options) *authenticator {
	return &authenticator{opts: opts, caPool: opts.ClientCAs, sessions: map[string]*session{}, tokens: map[string]token{}}
}

func (a *authenticator) clientCAs() *x509.CertPool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.caPool
}

func (a *authenticator) trustClientCA(pemBytes []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.caPool == nil {
		a.caPool = x509.NewCertPool()
	}
	a.caPool.AppendCertsFromPEM(pemBytes)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (a *authenticator) checkPassword(users map[string]string, user, pass string) bool {
	a.mu.Lock()
	want, ok := users[user]
	a.mu.Unlock()
	return ok && equal(want, pass)
}

// authenticate returns the client's identity: the user NSX would charge the
// request to for rate limiting.
func (a *authenticator) authenticate(r *http.Request) (string, *apiErr) {
	now := a.opts.Now()
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		// Principal identity: the certificate is the credential.
		return principalPrefix + r.TLS.VerifiedChains[0][0].Subject.CommonName, nil
	}
	if tok := r.Header.Get("csp-auth-token"); tok != "" {
		a.mu.Lock()
		t, ok := a.tokens[tok]
		a.mu.Unlock()
		if !ok || now.After(t.expires) {
			return "", &apiErr{http.StatusForbidden, CodeBadCredentials, badCredentials}
		}
		return t.user, nil
	}
	if c, err := r.Cookie("JSESSIONID"); err == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		s, ok := a.sessions[c.Value]
		if ok && now.Sub(s.lastUsed) > a.opts.SessionIdleTimeout {
			delete(a.sessions, c.Value)
			ok = false
		}
		if !ok || !equal(s.xsrf, r.Header.Get("X-XSRF-TOKEN")) {
			return "", &apiErr{http.StatusForbidden, CodeSessionExpired, "The session has expired or is not valid. Log in again."}
		}
		s.lastUsed = now
		return s.user, nil
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return "", &apiErr{http.StatusUnauthorized, CodeBadCredentials, "Authentication required: send credentials, a session cookie, a csp-auth-token or a client certificate."}
	}
	scheme, enc, _ := strings.Cut(authz, " ")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	user, pass, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok {
		return "", &apiErr{http.StatusForbidden, CodeBadCredentials, badCredentials}
	}
	switch {
	case strings.EqualFold(scheme, "Basic") && a.checkPassword(a.opts.Users, user, pass):
		return user, nil
	case strings.EqualFold(scheme, "Remote") && a.checkPassword(a.opts.RemoteUsers, user, pass):
		return user, nil
	}
	return "", &apiErr{http.StatusForbidden, CodeBadCredentials, badCredentials}
}

// login checks form credentials and opens a session.
func (a *authenticator) login(user, pass string) (id, xsrf string, ok bool) {
	if !a.checkPassword(a.opts.Users, user, pass) && !a.checkPassword(a.opts.RemoteUsers, user, pass) {
		return "", "", false
	}
	id, xsrf = randomSecret(24), randomSecret(24)
	a.mu.Lock()
	a.sessions[id] = &session{user: user, xsrf: xsrf, lastUsed: a.opts.Now()}
	a.logins++
	a.issued = append(a.issued, id, xsrf)
	a.mu.Unlock()
	return id, xsrf, true
}

func (a *authenticator) logout(id string) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// expireSessions drops every open session, as a manager restart would.
func (a *authenticator) expireSessions() {
	a.mu.Lock()
	a.sessions = map[string]*session{}
	a.mu.Unlock()
}

// exchangeToken answers the CSP authorize call for a refresh token.
func (a *authenticator) exchangeToken(refresh string) (string, time.Duration, bool) {
	a.mu.Lock()
	user, ok := a.opts.RefreshTokens[refresh]
	a.mu.Unlock()
	if !ok || refresh == "" {
		return "", 0, false
	}
	tok := randomSecret(32)
	a.mu.Lock()
	a.tokens[tok] = token{user: user, expires: a.opts.Now().Add(a.opts.TokenLifetime)}
	a.exchange++
	a.issued = append(a.issued, tok)
	a.mu.Unlock()
	return tok, a.opts.TokenLifetime, true
}

// expireTokens makes every issued CSP access token invalid.
func (a *authenticator) expireTokens() {
	a.mu.Lock()
	a.tokens = map[string]token{}
	a.mu.Unlock()
}

// isUnauthenticated tells the endpoints that take no credentials.
func isUnauthenticated(r *http.Request) bool {
	switch r.URL.Path {
	case "/api/session/create", cspAuthorizePath:
		return true
	}
	return strings.HasPrefix(r.URL.Path, "/nsxsim/")
}
