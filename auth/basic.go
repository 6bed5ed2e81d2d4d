// Package auth holds the ways t1route authenticates to NSX. Each yields what
// the NSX transport needs: a RoundTripper wrapper that adds credentials (or,
// for client certificates, a TLS configuration). None logs or returns a secret.
package auth

import (
	"encoding/base64"
	"net/http"
)

// Basic sends HTTP basic authentication with every request, or, with Remote,
// NSX's "Authorization: Remote" scheme for vIDM/LDAP users.
type Basic struct {
	Username, Password string
	Remote             bool
}

// Wrap implements nsx.Authenticator.
func (b Basic) Wrap(next http.RoundTripper) http.RoundTripper {
	scheme := "Basic "
	if b.Remote {
		scheme = "Remote "
	}
	header := scheme + base64.StdEncoding.EncodeToString([]byte(b.Username+":"+b.Password))
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", header)
		return next.RoundTrip(req)
	})
}

// String never shows the password.
func (b Basic) String() string { return "basic auth as " + b.Username + " (password <redacted>)" }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
