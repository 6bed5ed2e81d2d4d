//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/policy/cnp"

	"github.com/t1route/t1route/podroute/config"
)

// The guard keeper on a real kube-apiserver: it waits for the CRD, applies
// the guard, writes nothing when nothing changed, puts back a deleted or
// edited guard policy, deletes the guard policies no longer configured, and
// never touches a ClusterNetworkPolicy without the guard's labels.
func TestGuardKeeper(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(c.Config)
	cnps := dyn.Resource(cnp.Resource)
	mgmt := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}
	extra, err := config.ParseGuardSelector("tools:app=backup")
	if err != nil {
		t.Fatal(err)
	}
	keeper := func(allowed ...config.GuardSelector) *guard.Keeper {
		k, err := guard.New(dyn, mgmt, append(config.DefaultGuardSelectors(), allowed...), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := keeper(extra)
	if _, err := k.Sync(ctx); !errors.Is(err, guard.ErrNotServed) {
		t.Fatalf("before the CRD: %v, want ErrNotServed", err)
	}
	// Run reports through its gauge: 0 while the CRD is missing, 1 once the guard is in force.
	runner := keeper(extra)
	runner.Interval = 50 * time.Millisecond
	runner.Synced = prometheus.NewGauge(prometheus.GaugeOpts{Name: "synced"})
	runner.Synced.Set(-1)
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); runner.Run(runCtx) }()
	gauge := func(want float64) func() (bool, string) {
		return func() (bool, string) {
			got := testutil.ToFloat64(runner.Synced)
			return got == want, fmt.Sprintf("t1route_management_guard_synced %v", got)
		}
	}
	Eventually(t, 10*time.Second, "synced 0 without the CRD", gauge(0))
	c.ApplyCRD(t, cnp.CRD())
	Eventually(t, 10*time.Second, "synced 1 with the CRD", gauge(1))
	stopRun()
	<-ran
	for _, p := range []string{"allow-1", "allow-2", "allow-3", "deny"} { // start again from none
		if err := cnps.Delete(ctx, guard.GuardPolicyPrefix+"-"+p, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// An operator's own policy, with a name like the guard's but not its labels.
	own, err := cnp.ToUnstructured(&cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: guard.GuardPolicyPrefix + "-allow-9"},
		Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: 5, Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
			Egress: []cnp.EgressRule{{Action: cnp.Deny, To: []cnp.EgressPeer{{Networks: []string{"198.51.100.0/24"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cnps.Create(ctx, own, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	sync := func(what string, k *guard.Keeper, applied, deleted []string) {
		t.Helper()
		res, err := k.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		slices.Sort(res.Applied)
		slices.Sort(res.Deleted)
		if !slices.Equal(res.Applied, applied) || !slices.Equal(res.Deleted, deleted) {
			t.Fatalf("%s: applied %v deleted %v, want %v and %v", what, res.Applied, res.Deleted, applied, deleted)
		}
	}
	name := func(suffix string) string { return guard.GuardPolicyPrefix + "-" + suffix }
	all := []string{name("allow-1"), name("allow-2"), name("allow-3"), name("deny")}
	sync("first", k, all, nil)
	sync("again, nothing changed", k, nil, nil)
	deny, err := cnps.Get(ctx, name("deny"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nets, _, _ := unstructured.NestedSlice(deny.Object, "spec", "egress"); len(nets) != 1 {
		t.Fatalf("the deny policy as stored: %v", deny.Object["spec"])
	}

	// Deleted, and edited (an egress rule that no longer names the network).
	if err := cnps.Delete(ctx, name("allow-2"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(deny.Object, int64(50), "spec", "priority"); err != nil {
		t.Fatal(err)
	}
	if _, err := cnps.Update(ctx, deny, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sync("deleted and edited", k, []string{name("allow-2"), name("deny")}, nil)
	deny, err = cnps.Get(ctx, name("deny"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _ := unstructured.NestedInt64(deny.Object, "spec", "priority"); p != 1 {
		t.Fatalf("the edited priority stayed: %d", p)
	}

	// The extra selector removed from the configuration, then the guard.
	sync("one selector fewer", keeper(), nil, []string{name("allow-3")})
	off, err := guard.New(dyn, nil, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sync("guard off", off, nil, []string{name("allow-1"), name("allow-2"), name("deny")})
	left, err := cnps.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 1 || left.Items[0].GetName() != name("allow-9") {
		t.Fatalf("left: %d policies; want only the operator's own", len(left.Items))
	}

	// A controller whose ClusterRole predates the guard is told the fix.
	rc := rest.CopyConfig(c.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:t1route-system:t1route-controller"}
	old, err := guard.New(dynamic.NewForConfigOrDie(rc), mgmt, config.DefaultGuardSelectors(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Sync(ctx); err == nil || !strings.Contains(err.Error(), "apply t1route render's output again") {
		t.Fatalf("without the RBAC: %v, want the fix named", err)
	}
}
