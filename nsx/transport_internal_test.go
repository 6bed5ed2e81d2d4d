package nsx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRetryAfterIsClampedBeforeConversion: any Retry-After, however large
// or odd, becomes a wait in [0, limit]. 9223372037 s times time.Second
// overflows int64; that wait turned negative and the client retried at once.
func TestRetryAfterIsClampedBeforeConversion(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const limit = 5 * time.Minute
	cases := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"300", limit, true},
		{"301", limit, true},
		{"9223372036", limit, true},
		{"9223372037", limit, true}, // the first whole second that overflows time.Duration
		{"18446744073709551615", limit, true},
		{"99999999999999999999999999", limit, true}, // beyond uint64
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(time.Hour).Format(http.TimeFormat), limit, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", limit, true},
	}
	for _, c := range cases {
		got, ok := retryAfter(c.header, now, limit)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", c.header, got, ok, c.want, c.ok)
		}
	}
	// A limit under a second still bounds whole seconds.
	if got, _ := retryAfter("1", now, 40*time.Millisecond); got != 40*time.Millisecond {
		t.Errorf("retryAfter(1s) under a 40 ms limit = %v", got)
	}
	wait := backoff(limit)(time.Millisecond, time.Second, 1, &http.Response{Header: http.Header{"Retry-After": {"9223372037"}}})
	if wait != limit {
		t.Errorf("backoff after Retry-After: 9223372037 = %v, want %v", wait, limit)
	}
}

// TestPermanentFailures: which transport failures are never retried, and
// which only with FailFast (one-shot commands).
func TestPermanentFailures(t *testing.T) {
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(203, 0, 113, 10), Port: 443}, Err: os.NewSyscallError("connect", errno)}
	}
	wrapped := func(err error) error {
		return fmt.Errorf("nsx session login at https://203.0.113.10/api/session/create: %w", err)
	}
	cases := []struct {
		name         string
		err          error
		always, fast bool
	}{
		{"unknown authority", wrapped(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true, true},
		{"wrong host", wrapped(x509.HostnameError{Host: "nsx.example.com", Certificate: &x509.Certificate{}}), true, true},
		{"expired", wrapped(x509.CertificateInvalidError{Reason: x509.Expired}), true, true},
		{"tls alert", wrapped(&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}), true, true},
		{"not tls", &tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, true},
		{"no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nsx.example.com", IsNotFound: true}}, true, true},
		{"redirect", &RedirectError{StatusCode: 302, Location: "http://203.0.113.9/"}, true, true},
		{"refused", dial(syscall.ECONNREFUSED), false, true},
		{"no route", dial(syscall.EHOSTUNREACH), false, true},
		{"network unreachable", dial(syscall.ENETUNREACH), false, true},
		{"dns timeout", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "nsx.example.com", IsTimeout: true}}, false, true},
		{"tls handshake timeout", errors.New("net/http: TLS handshake timeout"), false, true},
		{"reset mid-request", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false, false},
	}
	for _, c := range cases {
		if got := permanent(c.err, false); got != c.always {
			t.Errorf("%s: permanent = %v, want %v", c.name, got, c.always)
		}
		if got := permanent(c.err, true); got != c.fast {
			t.Errorf("%s: permanent with FailFast = %v, want %v", c.name, got, c.fast)
		}
		if retry, _ := checkRetry(false)(context.Background(), nil, c.err); retry == c.always {
			t.Errorf("%s: checkRetry retries = %v", c.name, retry)
		}
	}
}
