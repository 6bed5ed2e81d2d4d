package nsx

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Text that NSX (or a proxy in front of it) sends back ends up in errors,
// logs, Kubernetes Events, node conditions and CLI output. A manager or
// proxy that echoes the request in an error answer ("invalid header
// Authorization: Basic ...", a dump of the request headers) would put the
// credentials t1route sent there, for anyone who can read Events. So every
// such text is redacted before it leaves this package: credential-shaped
// content by its shape (Redact), and the secrets this client actually sent
// or holds by their value (see callRecord.sent and SecretHolder).

// Redacted replaces a secret in text from the network.
const Redacted = "<redacted>"

// SecretHolder is an Authenticator that can name the secrets it holds
// (passwords, API tokens), so the client removes them from any text NSX
// answers, even where they do not look like a credential.
type SecretHolder interface {
	// Secrets returns the current secrets; empty strings are ignored.
	Secrets() []string
}

var (
	// headerCredential is a header (or cookie list) whose whole value is a
	// credential, as a header line, a JSON or Java map entry, or a Go
	// http.Header dump: the value runs to the end of the line, a quote, a
	// bracket or a comma (it may hold spaces: "Basic dXNlcjpwdw==").
	headerCredential = regexp.MustCompile(`(?i)((?:proxy-)?authorization|set-cookie|cookie)(["']?\s*[:=]\s*\[?\s*["']?)([^\s"'\[\]}\r\n,<][^"'\]}\r\n,<]*)`)
	// namedCredential is a parameter, header or cookie whose value is a
	// credential: query and form parameters (refresh_token=, j_password=),
	// JSON fields, header lines, cookies (JSESSIONID=); the value runs to
	// white space or a separator.
	namedCredential = regexp.MustCompile(`(?i)((?:x-)?xsrf-token|(?:x-)?csrf-token|csp-auth-token|jsessionid|vmware-api-session-id|` +
		`(?:access|refresh|id|api|auth|session|bearer)[_-]?token|api[_-]?key|client[_-]?secret|[a-z_]*password|passwd|passphrase|session[_-]?id|secret)` +
		`(["']?\s*[:=]\s*\[?\s*["']?)([^\s"'\[\]}\r\n,;&<]+)`)
	// schemeCredential is an Authorization value without its header name.
	schemeCredential = regexp.MustCompile(`(?i)\b(basic|bearer|remote|negotiate|token)(\s+)([A-Za-z0-9._~+/=-]{8,})`)
	// jwtLike is a JSON Web Token (VMC access tokens are JWTs): two base64url
	// JSON objects and a signature.
	jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
)

// minSecret is the shortest known secret Redact replaces wherever it
// appears: a shorter one would blank out ordinary words.
const minSecret = 4

// Redact removes credentials from s: every known secret wherever it
// appears (also URL- and base64-encoded), then credential-shaped content:
// values of credential headers (Authorization, Cookie, X-XSRF-TOKEN,
// csp-auth-token, ...), token and password parameters (refresh_token=,
// access_token=, j_password=, ...), Basic/Bearer/Remote credentials, and
// JWT-shaped strings. Each becomes <redacted>; the rest is kept, so the
// message still says what went wrong. Idempotent.
func Redact(s string, known ...string) string {
	for _, k := range known {
		if len(k) < minSecret {
			continue
		}
		for _, form := range []string{k, url.QueryEscape(k), url.PathEscape(k), base64.StdEncoding.EncodeToString([]byte(k))} {
			if strings.Contains(s, form) {
				s = strings.ReplaceAll(s, form, Redacted)
			}
		}
	}
	s = jwtLike.ReplaceAllString(s, Redacted)
	s = headerCredential.ReplaceAllString(s, "${1}${2}"+Redacted)
	s = namedCredential.ReplaceAllString(s, "${1}${2}"+Redacted)
	return schemeCredential.ReplaceAllStringFunc(s, func(m string) string {
		sub := schemeCredential.FindStringSubmatch(m)
		if !tokenLike(sub[1], sub[3]) {
			return m
		}
		return sub[1] + sub[2] + Redacted
	})
}

// tokenLike tells a credential after an authentication scheme from a word
// ("Basic authentication failed"): Basic and Remote carry base64 of
// user:password; other schemes a token with a digit or a symbol in it.
func tokenLike(scheme, v string) bool {
	if strings.EqualFold(scheme, "basic") || strings.EqualFold(scheme, "remote") {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
			if b, err := enc.DecodeString(v); err == nil && strings.Contains(string(b), ":") {
				return true
			}
		}
	}
	return strings.ContainsAny(v, "0123456789._~+/=-")
}

// credentialHeaders carry credentials on NSX and CSP requests.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Xsrf-Token", "Csp-Auth-Token", "Vmware-Api-Session-Id"}

// sentSecrets are the credentials in h as sent, in every form an echo may
// show: each header value, the token after its scheme, each cookie value,
// and user:password and the password of Basic and Remote credentials.
func sentSecrets(h http.Header) []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= minSecret && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, name := range credentialHeaders {
		for _, v := range h.Values(name) {
			add(v)
			scheme, token, ok := strings.Cut(v, " ")
			if !ok {
				continue
			}
			add(token)
			if strings.EqualFold(scheme, "basic") || strings.EqualFold(scheme, "remote") {
				if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token)); err == nil {
					add(string(b))
					if _, pass, ok := strings.Cut(string(b), ":"); ok {
						add(pass)
					}
				}
			}
		}
	}
	for _, c := range (&http.Request{Header: h}).Cookies() {
		add(c.Value)
	}
	return out
}

// noteCredentials records, in the call's record, the credentials a
// request carries as it leaves (below the authentication layer), so an
// error answer echoing them can be redacted by value.
type noteCredentials struct{ next http.RoundTripper }

func (t noteCredentials) RoundTrip(req *http.Request) (*http.Response, error) {
	if rec, ok := req.Context().Value(recordKey{}).(*callRecord); ok {
		for _, s := range sentSecrets(req.Header) {
			if !slices.Contains(rec.sent, s) {
				rec.sent = append(rec.sent, s)
			}
		}
	}
	return t.next.RoundTrip(req)
}
