package nsx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// Explain turns an error from a Client call (or from the authenticators
// under it) into one line for a person, in t1route's words: what went wrong,
// the root cause as the system reported it, and how to fix it, as
// "<what> (<cause>); fix: <how>". The most specific cause wins: an
// untrusted certificate met while retrying until a deadline is explained as
// the certificate, not the deadline. Explain(nil) is "".
func Explain(err error) string {
	if err == nil {
		return ""
	}
	who := subject(err)
	hostVar := "NSXT_MANAGER_HOST"
	if who != managerNoun {
		hostVar = "NSXT_VMC_AUTH_HOST" // the only other server t1route talks to
	}
	var re *RedirectError
	if errors.As(err, &re) {
		return fmt.Sprintf("%s answered with a redirect (HTTP %d to %s), which t1route never follows; fix: set NSXT_MANAGER_HOST to the manager's API address itself, not a portal or load balancer that redirects",
			who, re.StatusCode, re.Location)
	}
	if kind, cause := certCause(err); kind != 0 {
		detail := Sanitize(cause.Error(), 300)
		switch kind {
		case certUntrusted:
			return fmt.Sprintf("%s's certificate is not trusted (%s); fix: set NSXT_ROOT_CA_DATA_B64 to base64 of the PEM of the CA that signed it (base64 -w0 ca.pem)", who, detail)
		case certWrongHost:
			return fmt.Sprintf("%s's certificate is not for the name t1route connects to (%s); fix: set %s to a name the certificate holds, or reissue the certificate for this name", who, detail, hostVar)
		case certNotValidNow:
			return fmt.Sprintf("%s's certificate is expired or not yet valid (%s); fix: renew the certificate, or correct this machine's clock", who, detail)
		}
		return fmt.Sprintf("%s's certificate cannot be verified (%s); fix: check the certificate chain it presents, and NSXT_ROOT_CA_DATA_B64", who, detail)
	}
	if refusal, ok := tlsRefusal(err); ok {
		detail := Sanitize(refusal.Error(), 200)
		var rh *tls.RecordHeaderError
		if errors.As(err, &rh) {
			return fmt.Sprintf("%s does not speak TLS at this address (%s); fix: give %s the server's HTTPS address (port 443 unless changed)", who, detail, hostVar)
		}
		return fmt.Sprintf("%s refused the TLS handshake (%s); fix: with a client certificate, check it is registered in NSX as a principal identity and not expired; otherwise check the address is the manager's HTTPS port", who, detail)
	}
	if dns, ok := asDNSError(err); ok {
		name := Sanitize(dns.Name, 200)
		if dns.IsNotFound {
			return fmt.Sprintf("the host name %s does not resolve (%s); fix: check NSXT_MANAGER_HOST (or NSXT_VMC_AUTH_HOST) for typos, and that this machine's DNS knows the name", name, Sanitize(dns.Error(), 200))
		}
		if !dns.IsTimeout {
			return fmt.Sprintf("looking up the host name %s failed (%s); fix: check this machine's DNS servers (/etc/resolv.conf)", name, Sanitize(dns.Error(), 200))
		}
	}
	if op, ok := dialError(err); ok {
		at := who
		if op.Addr != nil && who == managerNoun {
			at = who + " at " + op.Addr.String()
		}
		detail := Sanitize(op.Err.Error(), 200)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Sprintf("%s refused the connection (%s): nothing listens there; fix: check the host and port in NSXT_MANAGER_HOST, and that the manager is up", at, detail)
		case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN):
			return fmt.Sprintf("%s is unreachable (%s); fix: check the network path and firewalls between this machine and the manager (TCP 443)", at, detail)
		}
	}
	var self interface{ Explain() string }
	if errors.As(err, &self) {
		return Sanitize(self.Explain(), 1000)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return explainAPIError(ae)
	}
	if timedOut(err) {
		return fmt.Sprintf("no answer from %s in time (%s); fix: check firewalls between this machine and the manager (TCP 443) and the manager's health, or allow more time",
			who, Sanitize(rootCause(err).Error(), 200))
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted before NSX answered (" + Sanitize(err.Error(), 300) + ")"
	}
	return Sanitize(err.Error(), 1000)
}

// managerNoun names the server when nothing says it is another one.
const managerNoun = "the NSX Manager"

// subject names the server err is about: the host of the first *url.Error
// in the chain (the VMC token exchange makes one), else the NSX Manager (the
// client's own errors carry the transport's, which name no URL).
func subject(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return Sanitize(u.Host, 200)
		}
	}
	return managerNoun
}

func explainAPIError(e *APIError) string {
	what := fmt.Sprintf("HTTP %d", e.StatusCode)
	if e.ErrorCode != 0 {
		what += fmt.Sprintf(", error_code %d", e.ErrorCode)
	}
	if e.Message != "" {
		what += ": " + Sanitize(e.Message, 300)
	}
	if e.StatusCode == http.StatusForbidden && e.ErrorCode == ErrorCodeNotAuthorized {
		return fmt.Sprintf("NSX accepted the credentials but the user's role does not allow %s %s (%s); fix: give the user a role that reaches NSXT_ROUTER_PATH: for a path inside a project, a role on that project (e.g. Project Admin); for /infra, one in the default space (e.g. Network Admin)",
			e.Method, Sanitize(e.Path, 300), what)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("the NSX Manager refused the credentials (%s); fix: check NSXT_USERNAME and NSXT_PASSWORD (or the credentials Secret), the client certificate's principal identity, or the VMC token, and that the user's role allows Tier-1 static routes (e.g. Network Admin)", what)
	case http.StatusTooManyRequests:
		return fmt.Sprintf("the NSX Manager is rate limiting t1route (%s); fix: lower t1route's request rate (--nsx-rate-limit) or the number of clients sharing this NSX user, or retry later", what)
	case http.StatusNotFound:
		return fmt.Sprintf("NSX has no object at %s (%s); fix: check the path, e.g. NSXT_ROUTER_PATH, against the NSX UI", Sanitize(e.Path, 300), what)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Sprintf("the NSX Manager is overloaded or unavailable (%s); fix: retry later, and check the manager cluster's health in the NSX UI (System > Appliances)", what)
	}
	return fmt.Sprintf("NSX refused %s %s (%s); fix: act on NSX's message (error codes are listed in the NSX API guide)", e.Method, Sanitize(e.Path, 300), what)
}

// Kinds of certificate problem, as Explain words them.
type certProblem int

const (
	certUntrusted certProblem = iota + 1
	certWrongHost
	certNotValidNow
	certOther
)

// certCause finds a certificate verification failure in err's chain.
func certCause(err error) (certProblem, error) {
	var host x509.HostnameError
	if errors.As(err, &host) {
		return certWrongHost, host
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return certUntrusted, unknown
	}
	var roots x509.SystemRootsError
	if errors.As(err, &roots) {
		return certUntrusted, roots
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		if invalid.Reason == x509.Expired {
			return certNotValidNow, invalid
		}
		return certOther, invalid
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return certOther, verify
	}
	return 0, nil
}

// tlsRefusal finds a TLS handshake the server refused (a TLS alert: it did
// not accept the client certificate, or shares no protocol version or
// cipher) or a server that does not speak TLS at all.
func tlsRefusal(err error) (error, bool) {
	var rh *tls.RecordHeaderError
	if errors.As(err, &rh) {
		return rh, true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return op, true
	}
	return nil, false
}

func asDNSError(err error) (*net.DNSError, bool) {
	var dns *net.DNSError
	return dns, errors.As(err, &dns)
}

// dialError finds a failure to open the TCP connection.
func dialError(err error) (*net.OpError, bool) {
	var op *net.OpError
	return op, errors.As(err, &op) && op.Op == "dial"
}

// unreachable reports whether err says the server could not be reached at
// all: no TCP connection (refused, no route, timeout, DNS), or no TLS
// handshake answer in time.
func unreachable(err error) bool {
	if _, ok := dialError(err); ok {
		return true
	}
	return strings.Contains(err.Error(), "TLS handshake timeout") // net/http's error type is not exported
}

// timedOut reports whether err is a timeout or an expired deadline.
func timedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rootCause is the innermost error of err's first chain.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
