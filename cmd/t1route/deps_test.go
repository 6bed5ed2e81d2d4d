package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// importers maps each package in the dependency graph of the program pkg to
// the packages of that graph that import it.
func importers(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	by := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if _, ok := by[fields[0]]; !ok {
			by[fields[0]] = nil // in the graph, imported by none so far
		}
		for _, imp := range fields[1:] {
			by[imp] = append(by[imp], fields[0])
		}
	}
	return by
}

// What each binary links is part of its contract: the production t1route
// holds no simulator, fake clients or test helpers (they live in
// integration/bench and tests), and t1route-cni, run for every pod, holds no
// Kubernetes client. libovsdb's client package is the one exception it
// brings itself: it imports testing (api_test_model.go) and Prometheus.
func TestBinaryDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to list dependencies")
	}
	onlyVia := func(deps map[string][]string, pkg string, allowed ...string) {
		t.Helper()
		for _, imp := range deps[pkg] {
			if !slices.Contains(allowed, imp) && !strings.HasPrefix(imp, pkg) && !strings.HasPrefix(imp, "github.com/prometheus/") {
				t.Errorf("%s is imported by %s", pkg, imp)
			}
		}
	}
	const libovsdb = "github.com/ovn-org/libovsdb/client"

	t1route := importers(t, "github.com/t1route/t1route/cmd/t1route")
	for _, banned := range []string{"github.com/t1route/t1route/nsx/nsxsim", "k8s.io/client-go/kubernetes/fake"} {
		if _, ok := t1route[banned]; ok {
			t.Errorf("t1route links %s (imported by %v)", banned, t1route[banned])
		}
	}
	onlyVia(t1route, "testing", libovsdb)

	cni := importers(t, "github.com/t1route/t1route/cmd/t1route-cni")
	var unwanted []string
	for pkg := range cni {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.HasPrefix(pkg, "github.com/t1route/t1route/") &&
			!slices.Contains([]string{"cmd/t1route-cni", "podroute/node/cni", "podroute/node/ovs", "podroute/node/pipeline", "podroute/node/policy/rules"}, strings.TrimPrefix(pkg, "github.com/t1route/t1route/")) {
			unwanted = append(unwanted, pkg)
		}
	}
	if len(unwanted) > 0 {
		slices.Sort(unwanted)
		t.Errorf("t1route-cni links %d Kubernetes or agent packages, among them %v (imported by %v)", len(unwanted), unwanted[:min(3, len(unwanted))], cni[unwanted[0]])
	}
	onlyVia(cni, "github.com/prometheus/client_golang/prometheus", libovsdb)
	onlyVia(cni, "testing", libovsdb)
}

// The tree's layers (podroute/doc.go): imports run down only. podroute/node/ovs
// is a plain Open vSwitch library; the node side never imports the
// controller side (the route controller, NSX, auth); the configuration
// package imports no node package.
func TestLayering(t *testing.T) {
	const mod = "github.com/t1route/t1route/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/t1route/t1route/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		from, why string
		may       func(imp string) bool
	}{
		{"podroute/node/ovs", "a plain OVS library", func(string) bool { return false }},
		{"podroute/node/pipeline", "the OpenFlow pipeline", func(imp string) bool {
			return imp == "podroute/node/ovs" || imp == "podroute/node/policy/rules"
		}},
		{"podroute/node/", "the node side", func(imp string) bool {
			return strings.HasPrefix(imp, "podroute/node/")
		}},
		{"podroute/config", "the configuration", func(imp string) bool { return !strings.HasPrefix(imp, "podroute/node/") }},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, r := range rules {
			if pkg != r.from && !(strings.HasSuffix(r.from, "/") && strings.HasPrefix(pkg, r.from)) {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				if rel, ok := strings.CutPrefix(imp, mod); ok && !r.may(rel) {
					t.Errorf("%s (%s) imports %s", pkg, r.why, rel)
				}
			}
			break
		}
	}
	if checked < 8 {
		t.Fatalf("only %d packages checked: the layout changed, update the rules", checked)
	}
}
