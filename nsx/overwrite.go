package nsx

import (
	"context"
	"errors"
	"net/http"
	"regexp"
)

// NSX protects objects that a protected principal identity created (the
// identity a client certificate authenticates, e.g. t1route's controller in
// certificate mode, or the vSphere cloud provider): nobody else may change or
// delete them, except an enterprise admin who sends X-Allow-Overwrite: true.

// ErrorCodeProtected is NSX's error_code for a change or delete of an object
// a protected principal identity created (NSX answers it with HTTP 400).
const ErrorCodeProtected = 289

// AllowOverwriteHeader is the header by which an enterprise admin overrides
// principal-identity protection.
const AllowOverwriteHeader = "X-Allow-Overwrite"

type allowOverwriteKey struct{}

// WithAllowOverwrite returns a context under which the client's calls send
// X-Allow-Overwrite: true, so that an enterprise admin may change or delete
// objects a protected principal identity created. Use it only for calls on
// objects t1route owns by its tags: NSX protects the others for a reason.
// (NSX ignores the header from anyone but an enterprise admin.)
func WithAllowOverwrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, allowOverwriteKey{}, true)
}

// allowsOverwrite reports whether ctx came from WithAllowOverwrite.
func allowsOverwrite(ctx context.Context) bool {
	v, _ := ctx.Value(allowOverwriteKey{}).(bool)
	return v
}

// overwriteTransport sets X-Allow-Overwrite on every attempt of a call made
// under WithAllowOverwrite; no caller builds the header itself.
type overwriteTransport struct{ next http.RoundTripper }

func (t overwriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if allowsOverwrite(req.Context()) {
		req = req.Clone(req.Context()) // a RoundTripper must not change its request
		req.Header.Set(AllowOverwriteHeader, "true")
	}
	return t.next.RoundTrip(req)
}

// IsProtected reports whether err is NSX refusing a change or delete because
// a protected principal identity created the object (for a hierarchical call,
// one of its children): the caller is not that identity, or is an enterprise
// admin who did not send X-Allow-Overwrite (see WithAllowOverwrite).
func IsProtected(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.ErrorCode == ErrorCodeProtected {
		return true
	}
	for _, r := range e.RelatedErrors {
		if r.ErrorCode == ErrorCodeProtected {
			return true
		}
	}
	return false
}

// createUserRE finds the creating identity in NSX's refusal, "... it doesn't
// own. (createUser=<name>, allowOverwrite=null)".
var createUserRE = regexp.MustCompile(`createUser=([^,)\s]+)`)

// ProtectedBy returns the identity that created the protected object err is
// about, when NSX names it (its message says "createUser=<name>"); "" if err
// is not a protection refusal or NSX did not say.
func ProtectedBy(err error) string {
	var e *APIError
	if !IsProtected(err) || !errors.As(err, &e) {
		return ""
	}
	if m := createUserRE.FindStringSubmatch(e.Message); m != nil {
		return m[1]
	}
	for _, r := range e.RelatedErrors {
		if m := createUserRE.FindStringSubmatch(r.Message); m != nil {
			return m[1]
		}
	}
	return ""
}
