package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/nsx"
)

// CSPAuthorizePath is where VMware Cloud Services exchanges an API token.
const CSPAuthorizePath = "/csp/gateway/am/api/auth/api-tokens/authorize"

// CSPToken authenticates to NSX on VMC: it exchanges the VMC API token
// (a refresh token) at https://<AuthHost>/csp/gateway/am/api/auth/api-tokens/authorize
// for an access token sent as csp-auth-token. It exchanges again at 80% of
// the token's lifetime and at once when NSX answers 401 or 403, with one
// exchange in flight however many requests wait. (The vSphere cloud
// provider never refreshes, and stops working after 30 minutes.)
type CSPToken struct {
	// AuthHost is the CSP host, host[:port] (NSXT_VMC_AUTH_HOST).
	AuthHost string
	// APIToken is the VMC API token (NSXT_VMC_ACCESS_TOKEN).
	APIToken string
	// Client makes the exchange; its TLS must trust the CSP host. Its
	// CheckRedirect is replaced: the exchange follows no redirect.
	Client *http.Client
	Logger *zap.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// String never shows the token.
func (c *CSPToken) String() string { return "VMC API token <redacted> via " + c.AuthHost }

// Secrets implements nsx.SecretHolder: the API token (the access tokens
// are seen by the client on the wire).
func (c *CSPToken) Secrets() []string { return []string{c.APIToken} }

// Wrap implements nsx.Authenticator.
func (c *CSPToken) Wrap(next http.RoundTripper) http.RoundTripper {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	client := http.Client{}
	if c.Client != nil {
		client = *c.Client
	}
	// The API token travels in the body: a 307/308 would re-POST it to
	// wherever Location points, so no redirect is followed, whatever
	// client the caller gave.
	client.CheckRedirect = nsx.RefuseRedirect
	return &refresher{next: next, cred: &cspCred{cfg: c, client: &client}}
}

type cspCred struct {
	cfg       *CSPToken
	client    *http.Client
	token     string
	refreshAt time.Time
}

func (c *cspCred) valid() bool { return c.token != "" && c.cfg.Now().Before(c.refreshAt) }
func (c *cspCred) drop()       { c.token = "" }

func (c *cspCred) refused(status, _ int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

func (c *cspCred) apply(req *http.Request) {
	req.Header.Del("Authorization")
	req.Header.Set("csp-auth-token", c.token)
}

// cspAnswer is CSP's token answer; CSP reports errors as {"message": ...}.
type cspAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Message     string `json:"message"`
}

func (c *cspCred) acquire(ctx context.Context, _ http.RoundTripper) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	endpoint := "https://" + c.cfg.AuthHost + CSPAuthorizePath
	form := url.Values{"refresh_token": {c.cfg.APIToken}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("VMC token exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Name the endpoint, not a redirect's target (whose query may
			// hold anything); the token is in the body, never in the URL.
			err = &url.Error{Op: ue.Op, URL: endpoint, Err: ue.Err}
		}
		return nil, fmt.Errorf("VMC token exchange: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var a cspAnswer
	jsonErr := json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusOK {
		// CSP's message is text from the network, bound for logs and events.
		msg := nsx.Sanitize(nsx.Redact(a.Message, c.cfg.APIToken), 300)
		if jsonErr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			// CSP trouble: worth retrying
			return nil, fmt.Errorf("VMC token exchange at %s: HTTP %d: %s (VMware Cloud Services is unavailable or rate limiting; retrying later may help)", endpoint, resp.StatusCode, msg)
		}
		return nil, &CredentialError{Err: fmt.Errorf("VMC token exchange at %s: VMware Cloud Services refused the API token (HTTP %d: %s); fix: check NSXT_VMC_ACCESS_TOKEN: it may be revoked or expired (create a new API token in the VMC console)", endpoint, resp.StatusCode, msg)}
	}
	if jsonErr != nil || a.AccessToken == "" || a.ExpiresIn <= 0 {
		return nil, fmt.Errorf("VMC token exchange at %s: the answer has no access_token and expires_in; is NSXT_VMC_AUTH_HOST a CSP host?", endpoint)
	}
	life := time.Duration(a.ExpiresIn) * time.Second
	c.token, c.refreshAt = a.AccessToken, c.cfg.Now().Add(life*8/10)
	c.cfg.Logger.Info("obtained a VMC access token", zap.Duration("lifetime", life), zap.Duration("refresh_in", life*8/10))
	return nil, nil
}
