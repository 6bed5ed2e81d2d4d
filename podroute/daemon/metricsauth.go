package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
)

// KubeAuth lets a request through only with a bearer token the API server
// authenticates (TokenReview) for a user it authorizes to get the
// request's path (SubjectAccessReview of a non-resource URL, e.g. get
// /metrics): what Kubernetes' own components do for their /metrics, and
// controller-runtime's metrics filter. Grant it with a ClusterRole rule
// nonResourceURLs: ["/metrics"], verbs: ["get"].
//
// Nothing is cached: a scrape costs two API requests (a Prometheus scrape
// every 15 s, about 0.13/s). A request without a token costs none; at most
// maxReviews run at once, beyond that the answer is 429, and Reviews should
// be a client of its own (its own rate limit), so that a flood of bad
// tokens never slows the controller's own API calls.
type KubeAuth struct {
	Reviews kubernetes.Interface
	Log     *zap.Logger
	// Timeout bounds both reviews (default 10 s).
	Timeout time.Duration
	sem     chan struct{}
}

const maxReviews = 4

// NewKubeAuth returns a KubeAuth asking reviews.
func NewKubeAuth(reviews kubernetes.Interface, log *zap.Logger) *KubeAuth {
	return &KubeAuth{Reviews: reviews, Log: log, Timeout: 10 * time.Second, sem: make(chan struct{}, maxReviews)}
}

// Wrap guards next.
func (a *KubeAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, msg := a.check(r)
		if code != http.StatusOK {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="t1route"`)
			}
			http.Error(w, msg, code)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns 200, or the status and message to answer. The token is
// never logged or answered.
func (a *KubeAuth) check(r *http.Request) (int, string) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return http.StatusUnauthorized, "Unauthorized: send a Kubernetes bearer token (Authorization: Bearer ...) of a subject allowed to get " + r.URL.Path
	}
	select {
	case a.sem <- struct{}{}:
		defer func() { <-a.sem }()
	default:
		return http.StatusTooManyRequests, "too many requests being authorized: try again"
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.Timeout)
	defer cancel()
	tr, err := a.Reviews.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		a.Log.Warn("cannot check a metrics request's token (TokenReview)", zap.Error(err))
		return http.StatusServiceUnavailable, "cannot check the token now"
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, "Unauthorized: the API server does not accept this token"
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	verb := strings.ToLower(r.Method)
	if r.Method == http.MethodHead {
		verb = "get"
	}
	sar, err := a.Reviews.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: r.URL.Path, Verb: verb}}}, metav1.CreateOptions{})
	if err != nil {
		a.Log.Warn("cannot check a metrics request's authorization (SubjectAccessReview)", zap.Error(err))
		return http.StatusServiceUnavailable, "cannot check the authorization now"
	}
	if !sar.Status.Allowed {
		return http.StatusForbidden, fmt.Sprintf("Forbidden: %s may not %s %s (grant it the ClusterRole t1route-metrics-reader)", u.Username, verb, r.URL.Path)
	}
	return http.StatusOK, ""
}

// ServingTLS is the TLS configuration of an HTTPS endpoint: the
// certificate in certDir (tls.crt, tls.key; read again at each handshake,
// so a renewed one is taken without a restart), or, with no certDir, a
// self-signed one made now for host.
func ServingTLS(certDir, host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if certDir == "" {
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("self-signed serving certificate: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	}
	load := func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
		if err != nil {
			return nil, fmt.Errorf("serving certificate from %s (tls.crt, tls.key): %w", certDir, err)
		}
		return &cert, nil
	}
	if _, err := load(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w; leave the directory unset for a self-signed certificate", err)
		}
		return nil, err
	}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return load() }
	return cfg, nil
}
