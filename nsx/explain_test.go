package nsx_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/t1route/t1route/nsx"
)

type selfExplaining struct{}

func (selfExplaining) Error() string { return "credentials not ready" }
func (selfExplaining) Explain() string {
	return "Secret t1route/nsx-credentials does not exist;\nfix: create it"
}

// TestExplain covers the causes Explain words that the live tests
// (failfast_test.go, the auth redirect tests) cannot produce on loopback,
// each wrapped as the client wraps it.
func TestExplain(t *testing.T) {
	at := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 443}
	dial := func(errno syscall.Errno) error {
		return &nsx.TransportError{Op: "get tier-1", Method: "GET", Path: "/policy/api/v1/infra/tier-1s/t1",
			Err: &net.OpError{Op: "dial", Net: "tcp", Addr: at, Err: os.NewSyscallError("connect", errno)}}
	}
	api := func(status, code int, msg string) error {
		return &nsx.BatchError{Err: &nsx.APIError{Op: "apply static routes", Method: "PATCH", Path: "/policy/api/v1/infra", StatusCode: status, ErrorCode: code, Message: msg}}
	}
	cases := []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"no route", dial(syscall.EHOSTUNREACH), []string{"NSX Manager at 203.0.113.10:443 is unreachable", "no route to host", "firewalls"}},
		{"network unreachable", dial(syscall.ENETUNREACH), []string{"unreachable", "network is unreachable"}},
		{"refused", dial(syscall.ECONNREFUSED), []string{"refused the connection", "203.0.113.10:443", "NSXT_MANAGER_HOST"}},
		{"expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time 2026-11-30 is after 2026-01-01"}}, []string{"expired or not yet valid", "renew"}},
		{"tls alert", &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, []string{"refused the TLS handshake", "bad certificate", "principal identity"}},
		{"not tls", &tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, []string{"does not speak TLS", "NSXT_MANAGER_HOST"}},
		{"dns server trouble", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "server misbehaving", Name: "nsx.example.com"}}, []string{"looking up the host name nsx.example.com failed", "resolv.conf"}},
		{"rate limited", api(429, 102, "Client 'admin' exceeded request rate of 100 per second."), []string{"rate limiting", "error_code 102", "--nsx-rate-limit"}},
		{"busy", api(503, 0, "Service Unavailable"), []string{"overloaded or unavailable", "HTTP 503"}},
		{"forbidden", api(403, 403, "The credentials were incorrect"), []string{"refused the credentials", "error_code 403"}},
		{"not found", &nsx.APIError{Method: "GET", Path: "/policy/api/v1/infra/tier-1s/t1", StatusCode: 404, ErrorCode: 600, Message: "The path=[/infra/tier-1s/t1] is invalid"}, []string{"no object at /policy/api/v1/infra/tier-1s/t1", "error_code 600", "NSXT_ROUTER_PATH"}},
		{"other api error", api(400, 255, "route r1: network\x1b[31m 0.0.0.0/0 is reserved"), []string{"NSX refused PATCH /policy/api/v1/infra", "HTTP 400, error_code 255", "is reserved"}},
		{"redirect", &nsx.TransportError{Err: &nsx.RedirectError{StatusCode: 307, Location: "http://203.0.113.9/collect"}}, []string{"redirect (HTTP 307 to http://203.0.113.9/collect)", "never follows"}},
		{"explains itself", fmt.Errorf("nsx: get tier-1: %w", selfExplaining{}), []string{"Secret t1route/nsx-credentials does not exist; fix: create it"}},
		{"cancelled", fmt.Errorf("nsx: get tier-1: %w", context.Canceled), []string{"interrupted"}},
		{"deadline", fmt.Errorf("nsx: get tier-1: %w", context.DeadlineExceeded), []string{"no answer from the NSX Manager in time"}},
		{"anything else", errors.New("first line\nsecond\tline"), []string{"first line second line"}},
	}
	for _, c := range cases {
		line := nsx.Explain(c.err)
		if c.err == nil {
			if line != "" {
				t.Errorf("Explain(nil) = %q", line)
			}
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: Explain = %q; want it to say %q", c.name, line, w)
			}
		}
		if strings.ContainsAny(line, "\n\r\x1b") {
			t.Errorf("%s: Explain = %q is not one printable line", c.name, line)
		}
	}
}
