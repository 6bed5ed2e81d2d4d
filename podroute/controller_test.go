package podroute

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/t1route/t1route/nsx"
)

// fakeNSX is a stateful Tier-1 that refuses routes to some networks with a
// 400, the way NSX refuses a route it finds invalid, and applies batches
// atomically.
type fakeNSX struct {
	mu      sync.Mutex
	routes  map[string]nsx.Route
	refuse  map[string]bool // network -> refused
	applies int
	lists   int
}

func (f *fakeNSX) ListRoutes(context.Context, nsx.RouterPath) ([]nsx.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	out := make([]nsx.Route, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeNSX) Apply(_ context.Context, _ nsx.RouterPath, ups []nsx.Route, dels []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	for _, r := range ups {
		if f.refuse[r.Network] {
			return &nsx.BatchError{Upserts: ups, Deletes: dels, Err: &nsx.APIError{StatusCode: 400, ErrorCode: 255,
				Message: fmt.Sprintf("route %s: network %s is reserved", r.ID, r.Network)}}
		}
	}
	for _, id := range dels {
		delete(f.routes, id)
	}
	for _, r := range ups {
		f.routes[r.ID] = r
	}
	return nil
}

func TestPermanentRefusalDoesNotBlockOtherNodes(t *testing.T) {
	kube := fakeNodes(40)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{"100.96.17.0/24": true}}
	events := record.NewFakeRecorder(100)
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond}, kube, fnsx, events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !c.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !c.Ready() {
		t.Fatal("no pass completed")
	}
	fnsx.mu.Lock()
	got, applies := len(fnsx.routes), fnsx.applies
	fnsx.mu.Unlock()
	if got != 39 {
		t.Fatalf("%d routes applied, want the 39 NSX accepts", got)
	}
	t.Logf("isolated the refused route in %d apply calls", applies)
	select {
	case ev := <-events.Events:
		if !strings.Contains(ev, "FailedToCreateRoute") || !strings.Contains(ev, "100.96.17.0/24") {
			t.Fatalf("event = %q", ev)
		}
	default:
		t.Fatal("no event for the refused route")
	}
	var cond *corev1.NodeCondition
	for deadline := time.Now().Add(5 * time.Second); cond == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n, _ := kube.CoreV1().Nodes().Get(ctx, "n17", metav1.GetOptions{}) // conditions are patched by their own worker
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
				cond = &n.Status.Conditions[i]
			}
		}
	}
	if cond == nil || cond.Status != corev1.ConditionTrue || !strings.Contains(cond.Message, "reserved") {
		t.Fatalf("condition on the refused node = %+v", cond)
	}
	n, _ := kube.CoreV1().Nodes().Get(ctx, "n16", metav1.GetOptions{})
	if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Fatalf("condition on an accepted node = %+v", n.Status.Conditions)
	}
}

func TestTrimNodeKeepsWhatRoutingNeeds(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"x": "y"}, Annotations: map[string]string{"big": strings.Repeat("z", 10000)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{PodCIDR: "100.96.1.0/24", PodCIDRs: []string{"100.96.1.0/24"}, ProviderID: "vsphere://x"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.1"}},
			Images:     []corev1.ContainerImage{{Names: []string{"big/image"}}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady}, {Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse}}},
	}
	out, _ := TrimNode(n)
	tn := out.(*corev1.Node)
	if tn.Annotations != nil || tn.Labels != nil || tn.ManagedFields != nil || tn.Status.Images != nil || tn.Spec.ProviderID != "" {
		t.Fatalf("not trimmed: %+v", tn)
	}
	got := FromNode(tn)
	if got.Name != "a" || got.PodCIDRs[0] != "100.96.1.0/24" || got.InternalIPs[0] != "198.51.100.1" || len(tn.Status.Conditions) != 1 {
		t.Fatalf("lost routing data: %+v", got)
	}
}

func TestOutOfBandChangesAreNamed(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	c := &Controller{cfg: Config{Identity: us}, log: zap.New(core)}
	a := route(us, "a", "100.96.1.0/24", "198.51.100.11")
	b := route(us, "b", "100.96.2.0/24", "198.51.100.12")
	bMoved := route(us, "b", "100.96.2.0/24", "198.51.100.99")
	foreign := nsx.Route{ID: "x", Network: "0.0.0.0/0"}
	c.logOutOfBand(map[string]nsx.Route{a.ID: a, b.ID: b, "x": foreign}, map[string]nsx.Route{b.ID: bMoved})
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message+" "+fmt.Sprint(e.ContextMap()))
	}
	text := strings.Join(msgs, "\n")
	if len(msgs) != 2 || !strings.Contains(text, "deleted in NSX out of band") || !strings.Contains(text, "100.96.1.0/24") ||
		!strings.Contains(text, "changed in NSX out of band") || !strings.Contains(text, "198.51.100.99") {
		t.Fatalf("logs:\n%s", text)
	}
}

// Every "applying route changes" is followed by the line saying they were
// applied, with counts and the time it took.
func TestAppliedChangesAreLogged(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4}, fakeNodes(3), fnsx, nil)
	c.log = zap.New(core)
	if err := c.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	applied := logs.FilterMessage("applied route changes").All()
	if len(applied) != 1 {
		t.Fatalf("want one applied line, got %d: %v", len(applied), logs.All())
	}
	m := applied[0].ContextMap()
	if m["upserts"] != int64(3) || m["deletes"] != int64(0) || m["owned_after"] != int64(3) || m["duration"] == nil {
		t.Fatalf("applied line: %v", m)
	}
}

// A resync's background list finds a route deleted in NSX out of band, and
// the next pass repairs it without listing again.
func TestBackgroundResyncList(t *testing.T) {
	kube := fakeNodes(3)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4}, kube, fnsx, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.reconcile(ctx); err != nil || len(fnsx.routes) != 3 {
		t.Fatalf("first pass: %v, %d routes", err, len(fnsx.routes))
	}
	fnsx.mu.Lock()
	delete(fnsx.routes, us.RouteID("100.96.1.0/24"))
	lists := fnsx.lists
	fnsx.mu.Unlock()
	c.backgroundList(ctx)
	for deadline := time.Now().Add(5 * time.Second); c.actual.listing.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the background list never finished")
		}
	}
	applies := fnsx.applies
	if err := c.reconcile(ctx); err != nil || len(fnsx.routes) != 3 || fnsx.applies != applies+1 || fnsx.lists != lists+1 {
		t.Fatalf("the out-of-band delete was not repaired by adopting the background list: %v, %d routes, %d lists", err, len(fnsx.routes), fnsx.lists-lists)
	}
}
