package conformance

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// A report as ginkgo v2 writes it with --json-report (trimmed to the
// fields read), holding one spec of each kind.
const sampleReport = `[{"SuiteDescription": "Kubernetes e2e suite", "SpecReports": [
 {"LeafNodeType": "SynchronizedBeforeSuite", "State": "passed"},
 {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It", "LeafNodeText": "should serve a basic endpoint from pods  [Conformance]", "State": "passed", "RunTime": 12500000000},
 {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It", "LeafNodeText": "should be able to change the type from ClusterIP to ExternalName [Conformance]", "State": "failed",
  "Failure": {"Message": "service is not reachable within 2m0s timeout\nmore", "Location": {"FileName": "/root/go/pkg/mod/k8s.io/kubernetes@v1.35.4/test/e2e/network/service.go", "LineNumber": 1485}}},
 {"ContainerHierarchyTexts": ["[sig-network] Netpol", "NetworkPolicy between server and client"], "LeafNodeType": "It", "LeafNodeText": "should enforce policy to allow traffic only from a pod in a different namespace based on its namespace label", "State": "passed"},
 {"ContainerHierarchyTexts": ["[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly]", "NetworkPolicy between server and client using SCTP"], "LeafNodeType": "It", "LeafNodeText": "should support a 'default-deny-ingress' policy", "State": "skipped"},
 {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It", "LeafNodeText": "should work after restarting kube-proxy [Disruptive]", "State": "skipped"},
 {"ContainerHierarchyTexts": ["[sig-network] DNS"], "LeafNodeType": "It", "LeafNodeText": "should provide DNS for the cluster [Conformance]", "State": "skipped", "Failure": {"Message": "Only supported for providers [gce] (not skeleton)"}},
 {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It", "LeafNodeText": "should serve multiport endpoints from pods  [Conformance]", "State": "skipped"},
 {"ContainerHierarchyTexts": ["[sig-storage] Volumes"], "LeafNodeType": "It", "LeafNodeText": "should store data [Conformance]", "State": "skipped"}
]}]`

func TestParseReport(t *testing.T) {
	skips := append(Skips, Skip{`kube-proxy \[Disruptive\]`, "not this one: the first matching entry wins"})
	rs, err := ParseReport(strings.NewReader(sampleReport), regexp.MustCompile(Focus+`|\[sig-network\] Services`), skips)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		state  State
		reason string
	}{
		"[sig-network] Services should serve a basic endpoint from pods  [Conformance]": {Passed, ""},
		"[sig-network] Services should be able to change the type from ClusterIP to ExternalName [Conformance]": {Failed,
			"failed: service is not reachable within 2m0s timeout (k8s.io/kubernetes@v1.35.4/test/e2e/network/service.go:1485)"},
		"[sig-network] Netpol NetworkPolicy between server and client should enforce policy to allow traffic only from a pod in a different namespace based on its namespace label": {Passed, ""},
		"[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP should support a 'default-deny-ingress' policy":             {Skipped, Skips[0].Reason},
		"[sig-network] Services should work after restarting kube-proxy [Disruptive]":                                                                                               {Skipped, Skips[1].Reason},
		"[sig-network] DNS should provide DNS for the cluster [Conformance]":                                                                                                        {Skipped, "Only supported for providers [gce] (not skeleton)"},
		"[sig-network] Services should serve multiport endpoints from pods  [Conformance]":                                                                                          {Failed, "not run: ginkgo skipped it without a reason (the run was interrupted or timed out first)"},
	}
	if len(rs) != len(want) {
		t.Errorf("got %d results, want %d (suite nodes and specs outside the focus left out): %+v", len(rs), len(want), rs)
	}
	for _, r := range rs {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected result %q", r.Name)
			continue
		}
		if r.State != w.state || r.Reason != w.reason {
			t.Errorf("%s: got %s %q, want %s %q", r.Name, r.State, r.Reason, w.state, w.reason)
		}
	}
	var b bytes.Buffer
	Summary(&b, "conformance", rs)
	if !strings.HasSuffix(b.String(), "\nconformance: 2 passed, 2 failed, 3 skipped\n") {
		t.Errorf("summary:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "SKIPPED: [sig-network] Services should work after restarting kube-proxy [Disruptive]\n    "+Skips[1].Reason) {
		t.Errorf("summary does not name the skip and its reason:\n%s", b.String())
	}
}

func TestParseReportRejectsOtherInput(t *testing.T) {
	if _, err := ParseReport(strings.NewReader("<testsuites/>"), regexp.MustCompile(Focus), Skips); err == nil {
		t.Error("a JUnit file parsed as ginkgo's JSON report")
	}
}

func TestSkipPatternCompiles(t *testing.T) {
	re, err := regexp.Compile(SkipPattern(Skips))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"[sig-network] Netpol [Feature:SCTPConnectivity] x", "[sig-network] Services y [Disruptive]"} {
		if !re.MatchString(name) {
			t.Errorf("%q not skipped", name)
		}
	}
	for _, name := range []string{"[sig-network] Services should serve a basic endpoint from pods  [Conformance]",
		// These send TCP only: SCTP is just named in a policy.
		"[sig-network] Netpol NetworkPolicy between server and client should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP [Feature:NetworkPolicy]",
		"[sig-network] Netpol NetworkPolicy between server and client should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP [Feature:NetworkPolicy]"} {
		if re.MatchString(name) {
			t.Errorf("%q would be skipped", name)
		}
	}
}

func TestMerge(t *testing.T) {
	listed := []Result{{Name: "a [Conformance]"}, {Name: "b [Disruptive]"}, {Name: "c"}, {Name: "d"}}
	ran := []Result{{Name: "a [Conformance]", State: Passed}, {Name: "d", State: Skipped, Reason: "Requires at least 3 nodes"}}
	got := Merge(listed, ran, Skips)
	want := []Result{{Name: "a [Conformance]", State: Passed}, {Name: "b [Disruptive]", State: Skipped, Reason: Skips[1].Reason},
		{Name: "c", State: Failed, Reason: "no result: the run ended before this spec (its timeout, or ginkgo interrupted)"},
		{Name: "d", State: Skipped, Reason: "Requires at least 3 nodes"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
