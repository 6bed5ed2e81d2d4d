package proxy

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The watcher publishes nothing before its informers synced, then the
// table of what exists, and follows changes (a slice named like its
// Service does not shadow it).
func TestWatcher(t *testing.T) {
	s := svc()
	sl := slice("s", discoveryv1.AddressTypeIPv4, http8080, ep{ip: "100.96.2.5"}) // named like the Service
	kube := fake.NewSimpleClientset(s, sl)
	w := NewWatcher(kube, node, time.Millisecond, zap.NewNop())
	if w.Table() != nil {
		t.Fatal("a table before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if tb := w.Table(); tb != nil && text(tb) == want {
				return
			}
			select {
			case err := <-errc:
				t.Fatalf("Run: %v", err)
			case <-w.Changes():
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				got := "<nil>"
				if tb := w.Table(); tb != nil {
					got = text(tb)
				}
				t.Fatalf("table:\n%s\nwant:\n%s", got, want)
			}
		}
	}
	wait("100.64.0.10/tcp:80 -> 100.96.2.5:8080")
	sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{"100.96.1.7"}})
	if _, err := kube.DiscoveryV1().EndpointSlices("x").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("100.64.0.10/tcp:80 -> 100.96.1.7:8080,100.96.2.5:8080")
	if err := kube.DiscoveryV1().EndpointSlices("x").Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("")
}
