package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/nsx"
)

// Session authenticates with an NSX session: one form login
// (POST /api/session/create), then the JSESSIONID cookie and X-XSRF-TOKEN
// header on every call, so NSX does not check the password on every request,
// which is slow on real managers. It logs in again when NSX answers 401 or 403
// error_code 98 (expired), and when the credentials change (a rotated Secret).
type Session struct {
	// BaseURL is the manager's base URL; the login goes to BaseURL + /api/session/create.
	BaseURL     string
	Credentials Credentials
	Logger      *zap.Logger
}

// Wrap implements nsx.Authenticator.
func (s *Session) Wrap(next http.RoundTripper) http.RoundTripper {
	log := s.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &refresher{next: next, cred: &sessionCred{cfg: s, log: log}}
}

// Secrets implements nsx.SecretHolder: the password (the session cookie
// and XSRF token are seen by the client on the wire).
func (s *Session) Secrets() []string { return credentialSecrets(s.Credentials) }

// sessionCred is the session state; the refresher's lock guards it.
type sessionCred struct {
	cfg         *Session
	log         *zap.Logger
	cookie      string
	xsrf        string
	credVersion uint64
}

func (c *sessionCred) valid() bool {
	if c.cookie == "" {
		return false
	}
	// Credentials rotated since the login: log in with the new ones.
	_, _, v, err := c.cfg.Credentials.Get()
	return err == nil && v == c.credVersion
}

func (c *sessionCred) drop() { c.cookie, c.xsrf = "", "" }

func (c *sessionCred) refused(status, code int) bool {
	return status == http.StatusUnauthorized || (status == http.StatusForbidden && code == nsx.ErrorCodeSessionExpired)
}

func (c *sessionCred) apply(req *http.Request) {
	req.Header.Del("Authorization")
	req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: c.cookie})
	req.Header.Set("X-XSRF-TOKEN", c.xsrf)
}

func (c *sessionCred) acquire(ctx context.Context, next http.RoundTripper) (*http.Response, error) {
	user, pass, version, err := c.cfg.Credentials.Get()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	loginURL := strings.TrimRight(c.cfg.BaseURL, "/") + "/api/session/create"
	form := url.Values{"j_username": {user}, "j_password": {pass}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("nsx session login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("nsx session login at %s: %w", loginURL, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// The NSX transport turns redirects into errors before they get
		// here; this holds for any other: a redirected login never
		// becomes the answer, which an http.Client above would follow.
		resp.Body.Close()
		return nil, fmt.Errorf("nsx session login at %s: %w", loginURL, nsx.RefuseRedirect(&http.Request{Response: resp}, nil))
	}
	if resp.StatusCode != http.StatusOK {
		c.log.Warn("NSX refused the session login", zap.String("user", user), zap.Int("status", resp.StatusCode))
		return resp, nil // NSX's refusal becomes the answer to the request
	}
	resp.Body.Close()
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			cookie = ck.Value
		}
	}
	xsrf := resp.Header.Get("X-XSRF-TOKEN")
	if cookie == "" || xsrf == "" {
		return nil, fmt.Errorf("nsx session login at %s: the answer has no JSESSIONID cookie or X-XSRF-TOKEN header; is this an NSX Manager?", loginURL)
	}
	c.cookie, c.xsrf, c.credVersion = cookie, xsrf, version
	c.log.Info("logged in to NSX (session)", zap.String("user", user))
	return nil, nil
}
