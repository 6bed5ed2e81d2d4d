package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", zap.String("k", "v"))
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != "v" {
		t.Fatalf("JSON log line: %v %q", err, b.String())
	}
	for _, tc := range []struct{ format, level, want string }{{"xml", "info", "--log-format"}, {"json", "loud", "--log-level"}} {
		if _, err := NewLogger(io.Discard, tc.format, tc.level); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: %v, want an error naming %s", tc.format, tc.level, err, tc.want)
		}
	}
}

func TestServeHealth(t *testing.T) {
	reg := NewRegistry()
	var ready error = errors.New("warming up")
	srv, err := ServeHealth("127.0.0.1:0", reg, func() error { return ready }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "warming up") {
		t.Fatalf("/readyz before ready: %d %q", code, body)
	}
	ready = nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz when ready: %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d", code)
	}
	if _, err := ServeHealth("256.0.0.1:1", reg, nil, zap.NewNop()); err == nil {
		t.Fatal("a bad address was accepted")
	}
}

func TestLeaseNamespace(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cases := []struct {
		name, flag string
		env        map[string]string
		want       string
	}{
		{"flag wins", "ops", map[string]string{"POD_NAMESPACE": "t1route-system"}, "ops"},
		{"the pod's namespace", "", map[string]string{"POD_NAMESPACE": "t1route-system"}, "t1route-system"},
		{"empty POD_NAMESPACE", "", map[string]string{"POD_NAMESPACE": ""}, "kube-system"},
		{"default", "", nil, "kube-system"},
	}
	for _, tc := range cases {
		if got := LeaseNamespace(env(tc.env), tc.flag); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	a, b := Lease(env(nil), "", "x", 15*time.Second), Lease(env(nil), "", "x", 15*time.Second)
	if a.Identity == b.Identity || a.Namespace != "kube-system" || a.RenewDeadline != 10*time.Second {
		t.Fatalf("two replicas' leases: %+v %+v", a, b)
	}
}

func TestRunElected(t *testing.T) {
	le := func(id string) *LeaderElection {
		return &LeaderElection{Namespace: "kube-system", Name: "test", Identity: id,
			LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 50 * time.Millisecond}
	}
	holder := func(kube *fake.Clientset) string {
		l, err := kube.CoordinationV1().Leases("kube-system").Get(context.Background(), "test", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	boom := errors.New("boom")

	t.Run("without a lease run runs at once", func(t *testing.T) {
		if err := RunElected(context.Background(), nil, nil, zap.NewNop(), nil, func(context.Context) error { return boom }); err != boom {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("stopping releases the lease after run returned", func(t *testing.T) {
		kube := fake.NewSimpleClientset()
		ctx, cancel := context.WithCancel(context.Background())
		led := make(chan struct{})
		var ranUntilEnd bool
		done := make(chan error)
		go func() {
			done <- RunElected(ctx, kube, le("a"), zap.NewNop(), nil, func(ctx context.Context) error {
				close(led)
				<-ctx.Done()
				ranUntilEnd = true
				return nil
			})
		}()
		<-led
		if h := holder(kube); h != "a" {
			t.Fatalf("holder %q while running", h)
		}
		cancel()
		if err := <-done; err != nil || !ranUntilEnd {
			t.Fatalf("err %v, run returned first: %v", err, ranUntilEnd)
		}
		if h := holder(kube); h != "" {
			t.Fatalf("lease still held by %q", h)
		}
	})
	t.Run("run's error ends the election", func(t *testing.T) {
		kube := fake.NewSimpleClientset()
		if err := RunElected(context.Background(), kube, le("a"), zap.NewNop(), nil, func(context.Context) error { return boom }); err != boom {
			t.Fatalf("err %v", err)
		}
		if h := holder(kube); h != "" {
			t.Fatalf("lease still held by %q", h)
		}
	})
	t.Run("a lost lease is ErrLeaseLost", func(t *testing.T) {
		kube := fake.NewSimpleClientset()
		var partitioned atomic.Bool
		kube.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if partitioned.Load() {
				return true, nil, errors.New("the API server is unreachable")
			}
			return false, nil, nil
		})
		var leading []bool
		done := make(chan error)
		go func() {
			done <- RunElected(context.Background(), kube, le("a"), zap.NewNop(), func(l bool) { leading = append(leading, l) },
				func(ctx context.Context) error {
					partitioned.Store(true) // renewals fail from now on
					<-ctx.Done()
					return nil
				})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrLeaseLost) || len(leading) != 2 || !leading[0] || leading[1] {
				t.Fatalf("err %v, leadership %v", err, leading)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the lost lease went unnoticed")
		}
	})
}
