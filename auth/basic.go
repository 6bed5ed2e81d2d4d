// Package auth holds the ways t1route authenticates to NSX, most secure
// first: a client certificate (ClientCert), a VMC API token exchanged for
// short-lived access tokens (CSPToken), and a user name and password — from
// a watched Kubernetes Secret (SecretCredentials) or from the environment
// (Static) — sent as an NSX session (Session) or on every request (Basic).
//
// Each yields what the NSX transport needs: an nsx.Authenticator wrapping
// its RoundTripper, or, for certificates, a TLS hook. None logs, prints or
// returns a secret.
package auth

import (
	"encoding/base64"
	"fmt"
	"net/http"
)

// Credentials supply a user name and password. Version changes whenever
// they do, so sessions opened with old credentials can be replaced.
type Credentials interface {
	// Get returns the current credentials, or an error saying why there are none (not ready).
	Get() (user, password string, version uint64, err error)
}

// Static are credentials that never change (NSXT_USERNAME, NSXT_PASSWORD).
type Static struct{ Username, Password string }

// Get implements Credentials.
func (s Static) Get() (string, string, uint64, error) { return s.Username, s.Password, 1, nil }

// String never shows the password.
func (s Static) String() string { return fmt.Sprintf("user %s (password <redacted>)", s.Username) }

// Basic authenticates every request with HTTP basic authentication or, with
// Remote, NSX's "Authorization: Remote" scheme for vIDM/LDAP users.
type Basic struct {
	Credentials Credentials
	Remote      bool
}

// Wrap implements nsx.Authenticator.
func (b Basic) Wrap(next http.RoundTripper) http.RoundTripper {
	scheme := "Basic "
	if b.Remote {
		scheme = "Remote "
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		user, pass, _, err := b.Credentials.Get()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", scheme+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		return next.RoundTrip(req)
	})
}

// Secrets implements nsx.SecretHolder: the password, removed from any text
// NSX answers.
func (b Basic) Secrets() []string { return credentialSecrets(b.Credentials) }

// credentialSecrets is the current password of creds, if any.
func credentialSecrets(creds Credentials) []string {
	if creds == nil {
		return nil
	}
	if _, pass, _, err := creds.Get(); err == nil && pass != "" {
		return []string{pass}
	}
	return nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// CredentialError is a failure to obtain credentials that retrying the same
// request cannot fix: a refused VMC token, credentials not (yet) in their
// Secret. The NSX transport does not retry it (it is Permanent); the caller
// decides when to try again.
type CredentialError struct{ Err error }

func (e *CredentialError) Error() string   { return e.Err.Error() }
func (e *CredentialError) Unwrap() error   { return e.Err }
func (e *CredentialError) Permanent() bool { return true }

// Explain is the error as one line for a person: its messages say what to
// fix (contract of nsx.Explain).
func (e *CredentialError) Explain() string { return e.Err.Error() }
