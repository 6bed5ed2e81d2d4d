package nsx

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// NSX error codes callers act on.
const (
	ErrorCodeSessionExpired = 98
	ErrorCodeRateLimited    = 102
	ErrorCodeNotFound       = 600
)

// APIError is an error answer from NSX, decoded from its JSON error body
// (or described, when a proxy answered with something that is not NSX JSON).
type APIError struct {
	Op            string         // what the client was doing, e.g. "list static routes"
	Method, Path  string         // the HTTP request
	StatusCode    int            // HTTP status
	ErrorCode     int            // NSX error_code; 0 if the body was not NSX's
	ModuleName    string         // NSX module_name
	Message       string         // NSX error_message, or a description of a non-NSX body
	Details       string         // NSX details
	RelatedErrors []RelatedError // NSX related_errors (per-child errors of a hierarchical call)
	RetryAfter    time.Duration  // from the Retry-After header, if any
}

// RelatedError is one entry of an NSX error's related_errors.
type RelatedError struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"error_message"`
}

// Error is the error on one line. Its NSX texts were redacted when the
// error was built (with the secrets the client sent); they are redacted
// again here, by shape, for an APIError built anywhere else.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nsx: %s: %s %s: HTTP %d", e.Op, e.Method, e.Path, e.StatusCode)
	if e.ErrorCode != 0 {
		fmt.Fprintf(&b, " (error_code %d)", e.ErrorCode)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if n := len(e.RelatedErrors); n > 0 {
		fmt.Fprintf(&b, " [%d related errors; first: %s]", n, e.RelatedErrors[0].Message)
	}
	return Redact(b.String())
}

// Temporary reports whether retrying the same request later may succeed.
func (e *APIError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// IsNotFound reports whether err is NSX's "not found".
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// IsTemporary reports whether err is an NSX answer worth retrying later, or a
// failure to reach NSX at all (an untrusted certificate or a redirect
// included: the transport does not retry those at once, but the manager or
// the path to it may be fixed later). Refused credentials are not.
func IsTemporary(err error) bool {
	var e *APIError
	if errors.As(err, &e) {
		return e.Temporary()
	}
	var te *TransportError
	return errors.As(err, &te) && !isPermanent(err)
}

// TransportError is a failure to get a usable answer from NSX (connection
// refused or reset, DNS, TLS failure, timeout, a redirect refused) after the
// transport's retries. Err is the cause: errors.As finds the standard
// library's own types in it (*net.DNSError, *net.OpError,
// *tls.CertificateVerificationError, x509.HostnameError, ...), or a
// *RedirectError; Explain turns it into a sentence.
type TransportError struct {
	Op, Method, Path string
	Err              error
}

func (e *TransportError) Error() string {
	// The cause may quote a server (a token service's refusal, a proxy).
	return Redact(fmt.Sprintf("nsx: %s: %s %s: %v", e.Op, e.Method, e.Path, e.Err))
}

func (e *TransportError) Unwrap() error { return e.Err }

// errorBody is NSX's JSON error envelope.
type errorBody struct {
	HTTPStatus    string         `json:"httpStatus"`
	ErrorCode     int            `json:"error_code"`
	ModuleName    string         `json:"module_name"`
	ErrorMessage  string         `json:"error_message"`
	Details       string         `json:"details"`
	RelatedErrors []RelatedError `json:"related_errors"`
}

// decodeAPIError builds an APIError from an HTTP error answer. A body that is
// not NSX's JSON (an HTML page from a proxy, truncated JSON) is described,
// never trusted; its text is cut short and stripped of control characters.
// Every text is redacted (redact.go) before it is cut: the known secrets
// (those the request carried, those the authenticator holds) and anything
// shaped like a credential.
func decodeAPIError(status int, contentType string, body []byte, known ...string) *APIError {
	e := &APIError{StatusCode: status}
	text := func(s string, n int) string { return printable(Redact(s, known...), n) }
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.ErrorCode != 0 || eb.ErrorMessage != "") {
		// Printable and bounded: this text ends up in logs and events.
		e.ErrorCode, e.ModuleName = eb.ErrorCode, text(eb.ModuleName, 100)
		e.Message, e.Details = text(eb.ErrorMessage, 2000), text(eb.Details, 2000)
		for i, r := range eb.RelatedErrors {
			if i == 100 {
				break
			}
			e.RelatedErrors = append(e.RelatedErrors, RelatedError{ErrorCode: r.ErrorCode, Message: text(r.Message, 500)})
		}
		return e
	}
	if len(body) == 0 {
		e.Message = http.StatusText(status) + " (empty body)"
		return e
	}
	if contentType == "" {
		contentType = "no content type"
	}
	contentType = printable(contentType, 100) // a header from anyone on the path
	size := fmt.Sprintf("%d bytes", len(body))
	if len(body) >= maxErrBody {
		size = fmt.Sprintf("over %d bytes", maxErrBody) // only the head was kept
	}
	// Redacted whole, then cut: a credential cut in two would not be recognised.
	e.Message = fmt.Sprintf("%s; the body is not an NSX error (%s, %s): %s", http.StatusText(status), contentType, size,
		snippet([]byte(Redact(string(body), known...)), 160))
	return e
}

// RedirectError is a redirect the client refused to follow. NSX never
// redirects API calls; following one would send the request, and the
// credentials the transport adds to it, to wherever Location points, and
// would turn a PATCH into a GET on a 301/302.
type RedirectError struct {
	StatusCode int
	// Location is the target as scheme://host/path: never its query string,
	// fragment or user info, which may hold a token.
	Location string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("the server answered HTTP %d, a redirect to %s; refusing to follow it (NSX never redirects API calls, and credentials would follow the request)", e.StatusCode, e.Location)
}

// newRedirectError describes resp, a redirect answer, without secrets.
func newRedirectError(resp *http.Response) *RedirectError {
	loc := "(no Location)"
	if u, err := resp.Location(); err == nil { // resolved against the request's URL
		loc = Sanitize((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(), 300)
	} else if resp.Header.Get("Location") != "" {
		loc = "(an unparsable Location)"
	}
	return &RedirectError{StatusCode: resp.StatusCode, Location: loc}
}

// RefuseRedirect is an http.Client CheckRedirect that follows no redirect,
// for HTTP clients that carry NSX or VMC credentials outside this package's
// transport (which refuses redirects itself).
func RefuseRedirect(req *http.Request, _ []*http.Request) error {
	if req.Response != nil {
		return newRedirectError(req.Response)
	}
	return &RedirectError{Location: Sanitize((&url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: req.URL.Path}).String(), 300)}
}

// Sanitize makes text that came over the network safe to log or show: one
// line, printable (control characters and line breaks become spaces, runs of
// white space one space), credentials redacted (Redact) and at most n bytes
// (then an ellipsis). NSX error bodies, VMC error messages and header
// values all pass through it.
func Sanitize(s string, n int) string {
	return strings.Join(strings.Fields(printable(s, n)), " ")
}

// printable keeps s printable (no control characters), redacted (by
// shape: Redact) and at most n bytes.
func printable(s string, n int) string {
	s = Redact(s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
}

// snippet returns a printable prefix of b on one line, for error messages.
func snippet(b []byte, n int) string {
	return Sanitize(string(b[:min(len(b), n+1)]), n)
}
