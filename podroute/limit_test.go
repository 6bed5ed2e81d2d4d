package podroute

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/t1route/t1route/nsx"
)

func TestCapRoutes(t *testing.T) {
	var nodes []Node
	for i := range 5 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("n%d", i), PodCIDRs: []string{fmt.Sprintf("100.96.%d.0/24", i)}, InternalIPs: []string{fmt.Sprintf("198.51.100.%d", i+1)}})
	}
	desired, _ := Desired(us, v4, nodes)
	existing := map[string]nsx.Route{us.RouteID("100.96.4.0/24"): {}, us.RouteID("100.96.3.0/24"): {}}
	cases := []struct {
		name    string
		limit   int
		kept    []string // nodes
		dropped []string
	}{
		{"no limit", 0, []string{"n0", "n1", "n2", "n3", "n4"}, nil},
		{"under the limit", 10, []string{"n0", "n1", "n2", "n3", "n4"}, nil},
		{"exactly the limit", 5, []string{"n0", "n1", "n2", "n3", "n4"}, nil},
		{"existing routes first, then node order", 3, []string{"n0", "n3", "n4"}, []string{"n1", "n2"}},
		{"below the existing count: existing routes stay, no new ones", 1, []string{"n3", "n4"}, []string{"n0", "n1", "n2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kept, dropped := capRoutes(desired, existing, tc.limit)
			keptNodes := map[string]bool{}
			for _, r := range kept {
				keptNodes[NodeOf(r)] = true
			}
			for _, n := range tc.kept {
				if !keptNodes[n] {
					t.Errorf("node %s lost its route; kept %v", n, keptNodes)
				}
			}
			if len(kept) != len(tc.kept) || len(dropped) != len(tc.dropped) {
				t.Fatalf("kept %d dropped %d, want %d and %d", len(kept), len(dropped), len(tc.kept), len(tc.dropped))
			}
			for i, p := range dropped {
				if p.Node != tc.dropped[i] || p.Reason != ReasonRouteLimit {
					t.Errorf("dropped[%d] = %+v, want node %s", i, p, tc.dropped[i])
				}
			}
		})
	}
}

func TestControllerReportsRouteLimit(t *testing.T) {
	kube := fakeNodes(40)
	fnsx := &fakeNSX{routes: map[string]nsx.Route{}, refuse: map[string]bool{}}
	events := record.NewFakeRecorder(100)
	c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, MaxRoutes: 30}, kube, fnsx, events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	drainConditions(ctx, c) // what the condition workers do
	if n := len(fnsx.routes); n != 30 {
		t.Fatalf("%d routes created with --max-routes 30", n)
	}
	if len(events.Events) != 10 {
		t.Fatalf("%d events for 10 nodes left out", len(events.Events))
	}
	n, _ := kube.CoreV1().Nodes().Get(ctx, "n39", metav1.GetOptions{})
	if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionTrue || !strings.Contains(n.Status.Conditions[0].Message, "--max-routes") {
		t.Fatalf("condition of a node left out: %+v", n.Status.Conditions)
	}
}
