package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
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
	// Client makes the exchange; its TLS must trust the CSP host.
	Client *http.Client
	Logger *zap.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// String never shows the token.
func (c *CSPToken) String() string { return "VMC API token <redacted> via " + c.AuthHost }

// Wrap implements nsx.Authenticator.
func (c *CSPToken) Wrap(next http.RoundTripper) http.RoundTripper {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Client == nil {
		c.Client = http.DefaultClient
	}
	return &refresher{next: next, cred: &cspCred{cfg: c}}
}

type cspCred struct {
	cfg       *CSPToken
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
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("VMC token exchange at %s: %w", endpoint, err) // the token is in the body, never in the URL
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var a cspAnswer
	jsonErr := json.Unmarshal(body, &a)
	if resp.StatusCode != http.StatusOK {
		msg := a.Message
		if jsonErr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		err := fmt.Errorf("VMC token exchange at %s: HTTP %d: %s (check NSXT_VMC_ACCESS_TOKEN: it may be revoked or expired)", endpoint, resp.StatusCode, msg)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, err // CSP trouble: worth retrying
		}
		return nil, &CredentialError{Err: err}
	}
	if jsonErr != nil || a.AccessToken == "" || a.ExpiresIn <= 0 {
		return nil, fmt.Errorf("VMC token exchange at %s: the answer has no access_token and expires_in; is NSXT_VMC_AUTH_HOST a CSP host?", endpoint)
	}
	life := time.Duration(a.ExpiresIn) * time.Second
	c.token, c.refreshAt = a.AccessToken, c.cfg.Now().Add(life*8/10)
	c.cfg.Logger.Info("obtained a VMC access token", zap.Duration("lifetime", life), zap.Duration("refresh_in", life*8/10))
	return nil, nil
}
