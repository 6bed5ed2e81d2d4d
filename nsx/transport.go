package nsx

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Limits bound how the client loads NSX. Retry, backoff and rate limiting
// live here, in the transport, and nowhere else: callers just call.
type Limits struct {
	// RateLimit is requests per second sent to NSX (every attempt counts);
	// default 50, half NSX's per-client limit of 100/s.
	RateLimit float64
	// Burst is how many requests may go at once after a quiet spell; default RateLimit.
	Burst int
	// MaxInFlight caps concurrent requests; default 10 (NSX allows 40 per client).
	MaxInFlight int
	// RequestTimeout bounds one attempt, from the moment it leaves the
	// client-side queue until its answer's headers; default 60 s.
	RequestTimeout time.Duration
	// MaxRetries is how often a failed request is retried; default 8. Negative disables retries.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff; default 250 ms and 30 s.
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is obeyed; default 5 min.
	MaxRetryAfter time.Duration
	// FailFast gives up at once when the manager cannot be reached at all
	// (connection refused, no route, connect or TLS handshake timeout)
	// instead of retrying: for one-shot commands, where a person waits and
	// a minute of retries only hides the cause. NSX's "try later" answers
	// (429, 502-504) and connections broken mid-request are still retried.
	// Certificate, DNS "no such host", redirect and credential failures are
	// never retried, FailFast or not.
	FailFast bool
}

func (l Limits) withDefaults() Limits {
	if l.RateLimit <= 0 {
		l.RateLimit = 50
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(l.RateLimit))
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 10
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = 60 * time.Second
	}
	switch {
	case l.MaxRetries == 0:
		l.MaxRetries = 8
	case l.MaxRetries < 0:
		l.MaxRetries = 0
	}
	if l.RetryWaitMin <= 0 {
		l.RetryWaitMin = 250 * time.Millisecond
	}
	if l.RetryWaitMax <= 0 {
		l.RetryWaitMax = 30 * time.Second
	}
	if l.MaxRetryAfter <= 0 {
		l.MaxRetryAfter = 5 * time.Minute
	}
	return l
}

// Authenticator adds credentials to requests; the implementations live in
// package auth. Wrap is called once, when the client is built.
type Authenticator interface {
	// Wrap returns a RoundTripper that authenticates every request it sends through next.
	Wrap(next http.RoundTripper) http.RoundTripper
}

// newHTTPClient builds the stack under the SDK, outermost first:
// retries (retryablehttp) → per-call recorder → client-side limits →
// per-attempt timeout → manager only → X-Allow-Overwrite → authentication → no redirects → TLS.
func newHTTPClient(base *url.URL, tlsConf *tls.Config, authn Authenticator, lim Limits, log *zap.Logger) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          lim.MaxInFlight * 2,
		MaxIdleConnsPerHost:   lim.MaxInFlight,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	var rt http.RoundTripper = noRedirects{next: noteCredentials{next: tr}}
	if authn != nil {
		rt = authn.Wrap(rt)
	}
	rt = overwriteTransport{next: rt} // X-Allow-Overwrite from the call's context (overwrite.go)
	rt = &managerOnly{next: rt, scheme: base.Scheme, hostPort: hostPort(base)}
	rt = &timeoutTransport{next: rt, timeout: lim.RequestTimeout}
	rt = &limitTransport{next: rt, bucket: rate.NewLimiter(rate.Limit(lim.RateLimit), lim.Burst), slots: make(chan struct{}, lim.MaxInFlight)}
	rt = &recordTransport{next: rt}

	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: rt, CheckRedirect: RefuseRedirect}
	rc.RetryMax = lim.MaxRetries
	rc.RetryWaitMin, rc.RetryWaitMax = lim.RetryWaitMin, lim.RetryWaitMax
	rc.CheckRetry = checkRetry(lim.FailFast)
	rc.Backoff = backoff(lim.MaxRetryAfter)
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler // the SDK sees NSX's last answer, not a generic "giving up"
	rc.Logger = nil
	rc.RequestLogHook = func(_ retryablehttp.Logger, req *http.Request, attempt int) {
		if attempt > 0 {
			log.Debug("retrying NSX request", zap.String("method", req.Method), zap.String("path", req.URL.Path), zap.Int("attempt", attempt))
		}
	}
	hc := rc.StandardClient()
	// Redirects never reach an http.Client (noRedirects turns them into
	// errors); this is for a future change of the stack.
	hc.CheckRedirect = RefuseRedirect
	return hc
}

// checkRetry retries on connection errors and on 429, 502, 503 and 504,
// the answers after which the same request can succeed unchanged.
func checkRetry(failFast bool) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			if permanent(err, failFast) {
				return false, nil
			}
			// DefaultRetryPolicy retries network errors but not bad schemes,
			// invalid headers or redirect loops, which no retry can fix.
			return retryablehttp.DefaultRetryPolicy(ctx, nil, err)
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true, nil
		}
		return false, nil
	}
}

// permanent reports whether err is a failure no retry of the same request
// can fix: an untrusted or mismatched certificate, a TLS handshake the
// server refused, a host name that does not resolve, a refused redirect, an
// authenticator's refused credentials; with failFast, also a manager that
// cannot be reached at all. errors.As looks through every wrapping (the
// session login and the VMC token exchange wrap what they meet), which
// retryablehttp's own policy does not.
func permanent(err error, failFast bool) bool {
	if isPermanent(err) {
		return true
	}
	if kind, _ := certCause(err); kind != 0 {
		return true
	}
	var re *RedirectError
	if errors.As(err, &re) {
		return true
	}
	if _, ok := tlsRefusal(err); ok {
		return true
	}
	if dns, ok := asDNSError(err); ok && dns.IsNotFound {
		return true
	}
	if failFast {
		return unreachable(err)
	}
	return false
}

// isPermanent reports whether err says no retry can help, e.g. an
// authenticator's refused credentials (contract: a Permanent() bool method).
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// backoff waits what the server's Retry-After asks (capped), otherwise an
// exponential backoff with jitter in [d/2, d] so that clients retrying at once
// spread out.
func backoff(maxRetryAfter time.Duration) retryablehttp.Backoff {
	return func(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil {
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now(), maxRetryAfter); ok {
				return d
			}
		}
		d := minWait << min(attempt, 30)
		if d <= 0 || d > maxWait {
			d = maxWait
		}
		return d/2 + rand.N(d/2+1)
	}
}

// retryAfter parses a Retry-After header, seconds or an HTTP date, into a
// wait in [0, limit]. The clamp comes before any conversion: a number of
// seconds times time.Second overflows int64 beyond 9,223,372,036 s (a wait
// turned negative retried at once, hammering a manager that asked for calm).
func retryAfter(v string, now time.Time, limit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		if s > uint64(limit/time.Second) {
			return limit, true
		}
		return min(time.Duration(s)*time.Second, limit), true
	} else if errors.Is(err, strconv.ErrRange) {
		return limit, true // digits only, beyond uint64: a very long wait
	}
	if t, err := http.ParseTime(v); err == nil {
		if !t.After(now) {
			return 0, true
		}
		if t.After(now.Add(limit)) { // compare times, not a Sub that saturates
			return limit, true
		}
		return t.Sub(now), true
	}
	return 0, false
}

// noRedirects turns every redirect answer into a *RedirectError, below the
// authentication layer: so no http.Client above can follow it with the
// credentials, and the session login sees it as a failure, not an answer.
type noRedirects struct{ next http.RoundTripper }

func (t noRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
		return resp, err
	}
	e := newRedirectError(resp)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) //nolint:errcheck // best effort, to reuse the connection
	resp.Body.Close()
	return nil, e
}

// managerOnly refuses requests for anywhere but the manager: the layers
// below it add credentials to whatever passes, and HTTPClient is handed out
// for Management Plane calls.
type managerOnly struct {
	next             http.RoundTripper
	scheme, hostPort string
}

func (t *managerOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Scheme, t.scheme) || hostPort(req.URL) != t.hostPort {
		return nil, &misdirectedError{target: Sanitize(req.URL.Scheme+"://"+req.URL.Host, 200), manager: t.scheme + "://" + t.hostPort}
	}
	return t.next.RoundTrip(req)
}

// misdirectedError is a request this client refused to send because it
// was not for the manager; a bug in the caller, never retried.
type misdirectedError struct{ target, manager string }

func (e *misdirectedError) Error() string {
	return fmt.Sprintf("refusing to send a request to %s: this client sends credentials to the NSX Manager %s only", e.target, e.manager)
}

func (e *misdirectedError) Permanent() bool { return true }

// hostPort is u's host name, lower case, and port (the scheme's default if none).
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// limitTransport keeps the client under NSX's API limits instead of provoking
// 429s: a token bucket for the rate and a semaphore for requests in flight.
// Every attempt, retries included, passes through it.
type limitTransport struct {
	next   http.RoundTripper
	bucket *rate.Limiter
	slots  chan struct{}
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := t.bucket.Wait(ctx); err != nil {
		<-t.slots
		if _, ok := ctx.Deadline(); ok {
			// rate.Limiter refuses at once when the token would come after
			// the deadline. Wait the deadline out, as a real wait would end:
			// then the caller's error is its context's, and the last
			// answer NSX gave (what the caller needs to know) is kept.
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		<-t.slots
		return nil, err
	}
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: func() { <-t.slots }}
	return resp, nil
}

// timeoutTransport bounds one attempt; the deadline lasts until the body is closed.
type timeoutTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: cancel}
	return resp, nil
}

// releaseOnClose runs release once, when the body is closed.
type releaseOnClose struct {
	io.ReadCloser
	release func()
	done    bool
}

func (b *releaseOnClose) Close() error {
	err := b.ReadCloser.Close()
	if !b.done {
		b.done = true
		b.release()
	}
	return err
}

// callRecord is what the transport saw of one client call: the SDK turns
// NSX's answers into generic errors (429 and 503 both become
// ServiceUnavailable), so the client reads the truth from here.
type callRecord struct {
	attempts    int
	status      int
	contentType string
	header      http.Header
	errBody     []byte // body of the last error answer, at most maxErrBody
	err         error  // transport error of the last attempt
	// sent are the credentials the call's requests carried (noteCredentials),
	// removed from any error answer that echoes them.
	sent []string
}

type recordKey struct{}

func withRecord(ctx context.Context, r *callRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

// maxErrBody bounds how much of an error answer is kept; NSX's are small, a
// proxy's HTML page may not be.
const maxErrBody = 64 << 10

type recordTransport struct{ next http.RoundTripper }

func (t *recordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec, _ := req.Context().Value(recordKey{}).(*callRecord)
	resp, err := t.next.RoundTrip(req)
	if rec == nil {
		return resp, err
	}
	rec.attempts++
	if err != nil && req.Context().Err() != nil {
		// The caller gave up during this attempt: keep what the attempt
		// before it met, the cause the caller's error should name.
		return resp, err
	}
	rec.err = err
	if err != nil {
		rec.status = 0
		return resp, err
	}
	rec.status, rec.header, rec.contentType = resp.StatusCode, resp.Header, resp.Header.Get("Content-Type")
	rec.errBody = nil
	if resp.StatusCode >= 400 {
		// Keep the head of the body for the error, and hand the SDK the same bytes.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		rec.errBody = head
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	return resp, nil
}
