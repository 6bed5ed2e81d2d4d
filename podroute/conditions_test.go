package podroute

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/t1route/t1route/nsx"
)

func TestConditionSatisfiedBy(t *testing.T) {
	created := wantCondition{false, ReasonRouteCreated, "t1route created 1 route(s) on /infra/tier-1s/t1", false}
	refused := wantCondition{true, ReasonNoRouteCreated, "NSX refused the route for 100.96.1.0/24: reserved", false}
	holder := wantCondition{true, ReasonNoRouteCreated, "pod CIDR 100.96.1.0/24 is also node b's pod CIDR", true}
	cond := func(s corev1.ConditionStatus, reason, msg string) *corev1.NodeCondition {
		return &corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: s, Reason: reason, Message: msg}
	}
	for _, tc := range []struct {
		name      string
		want      wantCondition
		cur       *corev1.NodeCondition
		satisfied bool
	}{
		{"no condition yet", created, nil, false},
		{"same", created, cond(corev1.ConditionFalse, ReasonRouteCreated, created.msg), true},
		{"only the message differs (route count)", created, cond(corev1.ConditionFalse, ReasonRouteCreated, "t1route created 2 route(s) on /infra/tier-1s/t1"), true},
		{"only the message differs (empty)", created, cond(corev1.ConditionFalse, ReasonRouteCreated, ""), true},
		{"only the message differs (refusal wording)", refused, cond(corev1.ConditionTrue, ReasonNoRouteCreated, "the cluster needs 40 routes but the Tier-1 allows 30"), true},
		{"created by the cloud provider: True", created, cond(corev1.ConditionTrue, ReasonNoRouteCreated, "Node created without a route"), false},
		{"status differs", refused, cond(corev1.ConditionFalse, ReasonRouteCreated, refused.msg), false},
		{"reason differs", created, cond(corev1.ConditionFalse, "CalicoIsUp", created.msg), false},
		{"status unknown", created, cond(corev1.ConditionUnknown, ReasonRouteCreated, created.msg), false},
		{"the holder named differs", holder, cond(corev1.ConditionTrue, ReasonNoRouteCreated, "pod CIDR 100.96.1.0/24 is also node a's pod CIDR"), false},
		{"the holder named is the same", holder, cond(corev1.ConditionTrue, ReasonNoRouteCreated, holder.msg), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.want.satisfiedBy(tc.cur); got != tc.satisfied {
				t.Fatalf("satisfiedBy = %v, want %v", got, tc.satisfied)
			}
		})
	}
}

// countPatches counts kube's node status patches.
func countPatches(kube *fake.Clientset) *atomic.Int64 {
	var n atomic.Int64
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" {
			n.Add(1)
		}
		return false, nil, nil
	})
	return &n
}

// A pass patches a node only when its condition's status or reason must change.
func TestConditionPatchedOnlyOnChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     *corev1.NodeCondition
		patches int64
	}{
		{"no condition", nil, 1},
		{"True from the cloud provider", &corev1.NodeCondition{Status: corev1.ConditionTrue, Reason: ReasonNoRouteCreated, Message: "Node created without a route"}, 1},
		{"False with another message", &corev1.NodeCondition{Status: corev1.ConditionFalse, Reason: ReasonRouteCreated, Message: "t1route created 3 route(s) on /infra/tier-1s/old"}, 0},
		{"False with another reason", &corev1.NodeCondition{Status: corev1.ConditionFalse, Reason: "SomeoneElse"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewSimpleClientset()
			n := testNode(1)
			if tc.cur != nil {
				tc.cur.Type = corev1.NodeNetworkUnavailable
				n.Status.Conditions = []corev1.NodeCondition{*tc.cur}
			}
			if _, err := kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			patches := countPatches(kube)
			fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
			c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4}, kube, fnsx, nil)
			ctx := context.Background()
			for range 2 { // a second pass patches nothing more
				if err := c.reconcile(ctx); err != nil {
					t.Fatal(err)
				}
				drainConditions(ctx, c)
			}
			if got := patches.Load(); got != tc.patches {
				t.Fatalf("%d status patches, want %d", got, tc.patches)
			}
			got, _ := kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Status != corev1.ConditionFalse {
				t.Fatalf("conditions = %+v", got.Status.Conditions)
			}
		})
	}
}

// A failed patch is retried, and the retry writes the newest condition
// wanted: an update made while the API server failed is not lost, and an
// older one never overwrites it.
func TestConditionPatchFailuresAreRetried(t *testing.T) {
	kube := fakeNodes(3)
	var failing atomic.Bool
	var failures atomic.Int64
	var written []corev1.ConditionStatus // n01's statuses as written, in order
	failing.Store(true)
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" || a.(k8stesting.PatchAction).GetName() != "n01" {
			return false, nil, nil
		}
		if failing.Load() {
			failures.Add(1)
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		p := string(a.(k8stesting.PatchAction).GetPatch())
		switch {
		case strings.Contains(p, `"status":"True"`):
			written = append(written, corev1.ConditionTrue)
		case strings.Contains(p, `"status":"False"`):
			written = append(written, corev1.ConditionFalse)
		}
		return false, nil, nil
	})
	// NSX refuses n01's route at first: it wants True.
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{"100.96.1.0/24": true}}
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond}, kube, fnsx, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }() //nolint:errcheck
	waitFor(t, "two failed patches of n01", func() bool { return failures.Load() >= 2 })
	// NSX accepts the route now: the next pass wants False, while patches still fail.
	fnsx.mu.Lock()
	fnsx.refuse = map[string]bool{}
	fnsx.mu.Unlock()
	c.queue.Add(workKey)
	waitFor(t, "the pass that applies n01's route", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		w, ok := c.wantCond["n01"]
		return ok && !w.unavailable
	})
	at := failures.Load()
	waitFor(t, "another failed patch", func() bool { return failures.Load() > at })
	failing.Store(false)
	waitFor(t, "n01's condition False", func() bool {
		n, _ := kube.CoreV1().Nodes().Get(ctx, "n01", metav1.GetOptions{})
		return len(n.Status.Conditions) == 1 && n.Status.Conditions[0].Status == corev1.ConditionFalse
	})
	cancel()
	<-done
	if len(written) != 1 || written[0] != corev1.ConditionFalse {
		t.Fatalf("n01's patches that went through: %v, want only the newest (False)", written)
	}
	t.Logf("%d failed patches, then the newest condition written once", failures.Load())
}

// Run patches conditions through RunOptions.NodeStatus, not its main client.
func TestConditionsUseTheNodeStatusClient(t *testing.T) {
	kube := fakeNodes(5)
	status := fakeNodes(5)
	mainPatches, statusPatches := countPatches(kube), countPatches(status)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, kube, fnsx, RunOptions{Config: Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond},
			NodeStatus: status})
	}()
	waitFor(t, "5 patches through the node status client", func() bool { return statusPatches.Load() == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := mainPatches.Load(); n != 0 {
		t.Fatalf("%d patches through the main client", n)
	}
}

// waitFor polls cond until it holds, failing t after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A node change's pass patches the nodes it changed, not every node; the
// full pass of a resync checks every node again and repairs a condition
// someone else changed.
func TestConditionsOfNodeChangePasses(t *testing.T) {
	kube := fakeNodes(3)
	patches := countPatches(kube)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	// A resync period this short lets a full pass repair at once what this
	// controller patched a moment ago (it waits that long for the informer).
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, ResyncPeriod: time.Millisecond}, kube, fnsx, nil)
	ctx := context.Background()
	pass := func(want int64) {
		t.Helper()
		if err := c.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		drainConditions(ctx, c)
		if got := patches.Load(); got != want {
			t.Fatalf("%d status patches so far, want %d", got, want)
		}
	}
	condition := func(name string) corev1.ConditionStatus {
		n, err := c.nodes.Get(name)
		if err != nil || len(n.Status.Conditions) != 1 {
			return ""
		}
		return n.Status.Conditions[0].Status
	}
	pass(3)
	for _, name := range []string{"n00", "n01", "n02"} {
		waitFor(t, name+"'s condition in the informer", func() bool { return condition(name) == corev1.ConditionFalse })
	}
	// Someone sets n00's condition back to True; then a node joins.
	n00, _ := kube.CoreV1().Nodes().Get(ctx, "n00", metav1.GetOptions{})
	n00.Status.Conditions[0].Status, n00.Status.Conditions[0].Reason = corev1.ConditionTrue, "SomeoneElse"
	if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, n00, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n00's condition True in the informer", func() bool { return condition("n00") == corev1.ConditionTrue })
	if _, err := kube.CoreV1().Nodes().Create(ctx, testNode(3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n03 in the informer", func() bool { _, err := c.nodes.Get("n03"); return err == nil })
	pass(4) // n03 only
	if condition("n00") != corev1.ConditionTrue {
		t.Fatal("n00 was patched by a node change's pass")
	}
	c.actual.Invalidate() // as a resync does: the next pass is full
	pass(5)               // n00 repaired
	waitFor(t, "n00's condition False again", func() bool { return condition("n00") == corev1.ConditionFalse })
}

// RunOptions.WhileLeading runs beside the controller and has ended by the
// time Run returns (the guard keeper must not outlive the lease).
func TestWhileLeadingEndsWithRun(t *testing.T) {
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started, ended atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, fakeNodes(1), fnsx, RunOptions{Config: Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond},
			WhileLeading: func(ctx context.Context) {
				started.Store(true)
				<-ctx.Done()
				time.Sleep(20 * time.Millisecond) // a keeper finishing a call
				ended.Store(true)
			}})
	}()
	waitFor(t, "WhileLeading started", started.Load)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Fatal("Run returned while WhileLeading was still running")
	}
}
