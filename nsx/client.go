// Package nsx is t1route's client for the NSX Policy API: the few calls the
// route controller needs, made through the official SDK
// (vsphere-automation-sdk-go) over one transport that owns retries, backoff
// and rate limiting. Errors are *APIError or *TransportError, wrapped with %w.
package nsx

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/core"
	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	"go.uber.org/zap"
)

// Config configures a Client. Host and the TLS settings come from the
// validated configuration built in cmd/.
type Config struct {
	// Host is the manager's base URL, e.g. https://nsx.example.com or
	// https://host/vmc/reverse-proxy/api/orgs/<org>/sddcs/<sddc>/sks-nsxt-manager.
	Host string
	// TLS is the TLS configuration (root CAs, client certificate, minimum version).
	TLS *tls.Config
	// Auth authenticates requests; nil sends none (client certificate only).
	Auth Authenticator
	// Limits bound the load on NSX; zero values take the defaults.
	Limits Limits
	// BatchSize is the most routes one hierarchical call carries; default 1000.
	BatchSize int
	// PageSize is the page size of list calls; default 1000 (NSX's maximum).
	PageSize int
	// Logger receives the client's logs; default a no-op logger.
	Logger *zap.Logger
	// Observe, if set, is called after every client call with its operation
	// name, the HTTP status of its last attempt (0 if none answered), the
	// number of attempts, and its duration (for metrics).
	Observe func(op string, status, attempts int, d time.Duration)
}

// Client calls the NSX Policy API. It is safe for concurrent use.
type Client struct {
	conn      vapiclient.Connector
	http      *http.Client
	base      *url.URL
	log       *zap.Logger
	batchSize int
	pageSize  int64
	observe   func(string, int, int, time.Duration)
	// maxRetryAfter caps APIError.RetryAfter as it caps the transport's waits.
	maxRetryAfter time.Duration
	// secrets, if the authenticator is a SecretHolder, are its secrets,
	// removed from NSX's error texts wherever they appear.
	secrets func() []string
}

// New builds a client; it does not contact NSX.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(cfg.Host, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("nsx: manager URL %q must be https://host[:port][/path]", cfg.Host)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 1000 {
		cfg.PageSize = 1000
	}
	tlsConf := cfg.TLS
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	limits := cfg.Limits.withDefaults()
	hc := newHTTPClient(base, tlsConf, cfg.Auth, limits, cfg.Logger)
	secrets := func() []string { return nil }
	if sh, ok := cfg.Auth.(SecretHolder); ok {
		secrets = sh.Secrets
	}
	return &Client{
		secrets: secrets,
		// Not the deprecated NewRestConnector, which records every response's
		// status in a shared field (a data race under concurrent calls); and
		// an application context set here, because the SDK's lazy one is
		// another race (both seen with -race in runtime v0.7.0).
		conn: vapiclient.NewConnector(base.String(), vapiclient.UsingRest(nil), vapiclient.WithHttpClient(hc),
			vapiclient.WithApplicationContext(core.NewApplicationContext(nil))),
		http:      hc,
		base:      base,
		log:       cfg.Logger,
		batchSize: cfg.BatchSize,
		pageSize:  int64(cfg.PageSize),
		observe:   cfg.Observe,

		maxRetryAfter: limits.MaxRetryAfter,
	}, nil
}

// HTTPClient is the client's HTTP stack (limits, retries, authentication),
// for calls the SDK does not cover. It sends requests to the manager only,
// and follows no redirect.
func (c *Client) HTTPClient() *http.Client { return c.http }

// BaseURL is the manager's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// ctxConnector hands the caller's context to the SDK, whose generated
// methods take none: every execution context it creates carries ctx, so
// cancellation and deadlines reach the HTTP request.
type ctxConnector struct {
	vapiclient.Connector
	ctx context.Context
}

func (c ctxConnector) NewExecutionContext() *core.ExecutionContext {
	ec := c.Connector.NewExecutionContext()
	ec.WithContext(context.WithValue(c.ctx, core.ResponseTypeKey, core.OnlyMonoResponse))
	return ec
}

// call runs one SDK call with ctx, and turns its failure into an *APIError
// or *TransportError built from what the transport saw.
func (c *Client) call(ctx context.Context, op, method, path string, fn func(vapiclient.Connector) error) error {
	return c.run(ctx, op, method, path, func(ctx context.Context) error {
		return fn(ctxConnector{Connector: c.conn, ctx: ctx})
	})
}

// run runs fn, which sends its requests through c.http with the context it
// is given, and reports its failure from what the transport saw of it.
func (c *Client) run(ctx context.Context, op, method, path string, fn func(context.Context) error) (err error) {
	rec := &callRecord{}
	start := time.Now()
	defer func() {
		// The SDK decodes what NSX (or a proxy) sends; a panic on a strange
		// answer is that answer's fault, and must not take the controller down.
		if r := recover(); r != nil {
			err = fmt.Errorf("nsx: %s: %s %s: the SDK failed on the answer (HTTP %d): %s", op, method, path, rec.status, Sanitize(fmt.Sprint(r), 300))
		}
	}()
	err = fn(withRecord(ctx, rec))
	if c.observe != nil {
		c.observe(op, rec.status, rec.attempts, time.Since(start))
	}
	if err == nil {
		return nil
	}
	var cause error
	switch {
	case rec.status >= 400:
		e := decodeAPIError(rec.status, rec.contentType, rec.errBody, append(rec.sent, c.secrets()...)...)
		e.Op, e.Method, e.Path = op, method, path
		if d, ok := retryAfter(rec.header.Get("Retry-After"), time.Now(), c.maxRetryAfter); ok {
			e.RetryAfter = d
		}
		cause = e
	case rec.err != nil:
		cause = &TransportError{Op: op, Method: method, Path: path, Err: rec.err}
	}
	if ctx.Err() != nil {
		if cause == nil || errors.Is(cause, ctx.Err()) {
			return fmt.Errorf("nsx: %s: %w", op, ctx.Err())
		}
		// Out of time while retrying: say so, and why the attempts failed
		// (a bare "context deadline exceeded" hides an untrusted
		// certificate or a manager refusing connections).
		return fmt.Errorf("nsx: %s: gave up (%w) after %d attempts; the last one: %w", op, ctx.Err(), rec.attempts, cause)
	}
	switch {
	case cause != nil:
		return cause
	case rec.attempts == 0:
		// The SDK failed before sending anything: a bug in what we gave it.
		return fmt.Errorf("nsx: %s: building the request: %w", op, sdkError(err))
	}
	// NSX answered 2xx but the SDK could not use the answer.
	return fmt.Errorf("nsx: %s: %s %s: HTTP %d with a body that is not the expected object: %w", op, method, path, rec.status, sdkError(err))
}

// send sends one request through the client's stack, for the calls whose
// bodies the client encodes and decodes itself (wire.go): the query, a JSON
// body if body is not nil (sent as the SDK sends it: Content-Type
// application/json, and a fresh Vapi-Ctx-Opid for NSX's logs), and the
// answer decoded into out if out is not nil. An answer other than 2xx is an
// error; run (its caller) builds the *APIError from what the transport
// recorded. The answer is drained and closed, which frees the request's
// slot in the client's limits.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u := c.base.String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Vapi-Ctx-Opid", uuid.NewString())
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)) //nolint:errcheck // only to reuse the connection
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}

const (
	// maxDrain bounds how much of an answer send reads only to reuse the connection.
	maxDrain = 1 << 20
	// maxAnswer bounds an answer send decodes: a page of 1,000 routes is
	// under 1 MB; a proxy's endless answer must not fill the memory.
	maxAnswer = 64 << 20
)

// sdkError shortens the SDK's error values, whose formatting can be a long
// struct dump, to a readable line.
func sdkError(err error) error {
	return errors.New(snippet([]byte(err.Error()), 300))
}
