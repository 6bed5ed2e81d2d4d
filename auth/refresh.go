package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// staleCredential is a credential NSX may stop accepting: a session or a
// CSP access token. acquire is called under the refresher's lock, so however
// many requests wait, one login or exchange is in flight.
type staleCredential interface {
	// valid reports whether the held credential can still be used.
	valid() bool
	// acquire logs in or exchanges a token through next. A non-nil answer
	// is NSX's refusal, handed to the caller as the answer to its request.
	acquire(ctx context.Context, next http.RoundTripper) (answer *http.Response, err error)
	// apply adds the held credential to req.
	apply(req *http.Request)
	// drop forgets the held credential.
	drop()
	// refused reports whether an answer means the credential is no longer accepted.
	refused(status int, errorCode int) bool
}

// refresher sends requests with a stale-able credential: it acquires one when
// there is none, and when NSX refuses it, acquires a new one (once, whoever
// noticed first) and sends the request again, once.
type refresher struct {
	next http.RoundTripper
	cred staleCredential

	mu  sync.Mutex
	gen uint64 // bumped on every acquisition
}

func (r *refresher) current(ctx context.Context) (gen uint64, answer *http.Response, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.cred.valid() {
		answer, err = r.cred.acquire(ctx, r.next)
		if err != nil || answer != nil {
			return 0, answer, err
		}
		r.gen++
	}
	return r.gen, nil, nil
}

// invalidate drops the credential of generation gen; a newer one is kept.
func (r *refresher) invalidate(gen uint64) {
	r.mu.Lock()
	if r.gen == gen {
		r.cred.drop()
	}
	r.mu.Unlock()
}

func (r *refresher) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		gen, answer, err := r.current(req.Context())
		if err != nil || answer != nil {
			return answer, err
		}
		out := req.Clone(req.Context())
		out.Body, out.GetBody = body(), func() (io.ReadCloser, error) { return body(), nil }
		r.mu.Lock()
		r.cred.apply(out)
		r.mu.Unlock()
		resp, err := r.next.RoundTrip(out)
		if err != nil || attempt > 0 || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
			return resp, err
		}
		code, restored := peekErrorCode(resp)
		if !r.cred.refused(resp.StatusCode, code) {
			return restored, nil
		}
		restored.Body.Close()
		r.invalidate(gen)
	}
}

// replayableBody reads a request body once so the request can be sent again.
func replayableBody(req *http.Request) (func() io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return func() io.ReadCloser { return http.NoBody }, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	return func() io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }, nil
}

// peekErrorCode reads NSX's error_code from an error answer and returns the
// answer with its body intact.
func peekErrorCode(resp *http.Response) (int, *http.Response) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	var e struct {
		ErrorCode int `json:"error_code"`
	}
	json.Unmarshal(b, &e) //nolint:errcheck // not NSX JSON: code 0
	return e.ErrorCode, resp
}
