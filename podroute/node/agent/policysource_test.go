package agent

import (
	"context"
	"reflect"
	"testing"

	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/policy/rules"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// The policies `t1route get networkpolicy` shows are those of the rules file
// the flow sync installed, with their local pods and flows; --networkpolicy
// keeps exactly the flows carrying that policy's cookies.
func TestPolicySourceFromInstalledRules(t *testing.T) {
	dir := t.TempDir()
	a := New(Config{RunDir: dir}, nil, nil, nil)
	src := policySource{a}

	if ps, err := src.NetworkPolicies(context.Background(), ""); err != nil || len(ps) != 0 {
		t.Fatalf("before any rules file: %v, %v; want none", ps, err)
	}

	allowWeb := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: "x", Name: "allow-web"}
	denyAll := rules.PolicyRef{Kind: rules.KindNetworkPolicy, Namespace: "y", Name: "deny-all"}
	guard := rules.PolicyRef{Kind: rules.KindClusterNetworkPolicy, Name: "management-guard"}
	rs := &rules.Set{Node: "node-a", Rules: []rules.Rule{
		{Policy: allowWeb, Direction: rules.Ingress, Pods: []string{"x/b", "x/a"}},
		{Policy: allowWeb, Direction: rules.Ingress, Index: 1, Pods: []string{"x/a"}},
		{Policy: guard, Direction: rules.Egress, Pods: []string{"x/a", "y/c"}},
	}}
	rs.Isolated[rules.Ingress] = map[string][]rules.PolicyRef{"y/c": {denyAll}}
	if err := rules.WriteFile(pipeline.PolicyFile(dir), rs); err != nil {
		t.Fatal(err)
	}
	counters := map[uint64]pipeline.Counter{
		pipeline.CookieTag | 1: {Policy: allowWeb}, pipeline.CookieTag | 2: {Policy: allowWeb},
		pipeline.CookieTag | 3: {Policy: guard}, pipeline.CookieTag | 4: {Policy: denyAll, Isolation: true},
	}
	a.counters.Store(&counters)

	got, err := src.NetworkPolicies(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []introspect.NetworkPolicy{
		{Name: "management-guard", Kind: rules.KindClusterNetworkPolicy, AppliedTo: []string{"x/a", "y/c"}, Rules: 1, Flows: 1},
		{Namespace: "x", Name: "allow-web", Kind: rules.KindNetworkPolicy, AppliedTo: []string{"x/a", "x/b"}, Rules: 2, Flows: 2},
		{Namespace: "y", Name: "deny-all", Kind: rules.KindNetworkPolicy, AppliedTo: []string{"y/c"}, Rules: 0, Flows: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("policies:\n got %+v\nwant %+v", got, want)
	}
	if got, _ := src.NetworkPolicies(context.Background(), "y"); len(got) != 1 || got[0].Name != "deny-all" {
		t.Fatalf("namespace y: %+v", got)
	}

	flows := []introspect.Flow{{Cookie: introspect.Cookie(pipeline.CookieTag | 1)}, {Cookie: 0}, {Cookie: introspect.Cookie(pipeline.CookieTag | 2)},
		{Cookie: introspect.Cookie(pipeline.CookieTag | 3)}}
	if f, _ := src.PolicyFlows(context.Background(), "x", "allow-web", flows); len(f) != 2 {
		t.Fatalf("allow-web flows: %+v", f)
	}
	if f, _ := src.PolicyFlows(context.Background(), "", "management-guard", flows); len(f) != 1 {
		t.Fatalf("management-guard flows: %+v", f)
	}
	if f, _ := src.PolicyFlows(context.Background(), "y", "allow-web", flows); len(f) != 0 {
		t.Fatalf("allow-web in the wrong namespace: %+v", f)
	}
}
