package podroute

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/daemon"
)

// partition makes every call of kube fail as an unreachable API server
// would, while down is set.
func partition(kube interface {
	PrependReactor(verb, resource string, fn k8stesting.ReactionFunc)
}, down *atomic.Bool) {
	kube.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("dial tcp 198.51.100.2:6443: connect: connection refused")
		}
		return false, nil, nil
	})
}

// A controller started while the API server is away waits for it (and
// stays up for the kubelet) instead of exiting; what the API server answers
// is returned at once.
func TestWaitClusterUIDWaitsForTheAPIServer(t *testing.T) {
	kube := fakeNodes(0)
	var down atomic.Bool
	down.Store(true)
	partition(kube, &down)
	time.AfterFunc(1500*time.Millisecond, func() { down.Store(false) })
	start := time.Now()
	if _, err := WaitClusterUID(context.Background(), kube, zap.NewNop()); !apierrors.IsNotFound(err) {
		// the fake has no kube-system namespace: NotFound, once it answers
		t.Fatalf("err %v, want NotFound once the API server answered", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("returned after %s, before the API server answered", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	down.Store(true)
	if _, err := WaitClusterUID(ctx, kube, zap.NewNop()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	kube.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "kube-system", errors.New("no"))
	})
	down.Store(false)
	if _, err := WaitClusterUID(context.Background(), kube, zap.NewNop()); !apierrors.IsForbidden(err) {
		t.Fatalf("err %v, want Forbidden at once", err)
	}
}

// The API server away longer than the lease: the leader loses the lease and
// stays up; when the API server answers again it leads again (a fresh term)
// without a restart.
func TestRunUntilDoneLeadsAgainAfterAnOutage(t *testing.T) {
	kube := fakeNodes(2)
	var down atomic.Bool
	partition(kube, &down)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	var terms atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunUntilDone(ctx, kube, fnsx, RunOptions{Config: Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond},
			LeaderElection: &daemon.LeaderElection{Namespace: "kube-system", Name: "t1route", Identity: "a",
				LeaseDuration: 500 * time.Millisecond, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 50 * time.Millisecond},
			WhileLeading: func(ctx context.Context) { terms.Add(1); <-ctx.Done() }})
	}()
	waitFor(t, "the first term", func() bool { return terms.Load() == 1 })
	down.Store(true)
	time.Sleep(time.Second) // longer than the lease
	select {
	case err := <-done:
		t.Fatalf("RunUntilDone returned during the outage: %v", err)
	default:
	}
	down.Store(false)
	waitFor(t, "a second term after the outage", func() bool { return terms.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("after ctx ended: %v", err)
	}
}
