package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// KubeAuth's decisions, with the API server's answers faked: no token or
// another scheme costs no API request; the token goes to TokenReview, the
// user it names (groups and extra too) to SubjectAccessReview for the
// request's path and verb; the token never appears in an answer.
func TestKubeAuth(t *testing.T) {
	const good, denied = "Good-T0ken", "Denied-T0ken"
	var sar *authzv1.SubjectAccessReview
	kube := fake.NewClientset()
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		switch tr.Spec.Token {
		case good:
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:monitoring:prometheus",
				Groups: []string{"system:serviceaccounts"}, Extra: map[string]authnv1.ExtraValue{"k": {"v"}}}}
		case denied:
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:default:nosy"}}
		}
		return true, tr, nil
	})
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar = a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:monitoring:prometheus"
		return true, sar, nil
	})
	auth := NewKubeAuth(kube, zap.NewNop())
	srv := httptest.NewServer(auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics") }))) //nolint:errcheck
	defer srv.Close()
	get := func(header string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, h := range []string{"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"} {
		if code, _ := get(h); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", h, code)
		}
	}
	if n := len(kube.Actions()); n != 0 {
		t.Errorf("%d API requests for requests without a bearer token", n)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{"Unknown-T0ken", http.StatusUnauthorized}, {denied, http.StatusForbidden}, {good, http.StatusOK}} {
		code, body := get("Bearer " + tc.token)
		if code != tc.want || strings.Contains(body, tc.token) {
			t.Errorf("%s: %d %q, want %d without the token", tc.token, code, body, tc.want)
		}
	}
	if sar == nil || sar.Spec.NonResourceAttributes == nil || *sar.Spec.NonResourceAttributes != (authzv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}) ||
		sar.Spec.Groups[0] != "system:serviceaccounts" || sar.Spec.Extra["k"][0] != "v" {
		t.Errorf("the access review asked: %+v", sar)
	}
}
