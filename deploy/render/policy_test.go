package render

import (
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
	"github.com/t1route/t1route/podroute/policy"
)

// The manifests carry the ClusterNetworkPolicy CRD first, and the guard's
// policies when a management CIDR is given: only then.
func TestManagementGuardAndCRD(t *testing.T) {
	cfg, _ := config.Load(config.FromMap(configtest.ValidEnv()))
	extra, _ := policy.ParseGuardSelector("tools:app=backup")
	out, err := Manifests(cfg, config.FromMap(configtest.ValidEnv()), Options{Image: "img:1",
		ManagementCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}, ManagementAllowed: append(policy.DefaultGuardSelectors(), extra)})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "\n---\n")
	if !strings.Contains(docs[1], "name: clusternetworkpolicies.policy.networking.k8s.io") {
		t.Fatalf("the CRD is not the first object:\n%.300s", docs[1])
	}
	var guards []string
	for _, d := range docs {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     struct {
				Tier     string
				Priority int
			}
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err == nil && obj.Kind == "ClusterNetworkPolicy" {
			guards = append(guards, obj.Metadata.Name+" "+obj.Spec.Tier)
			if !strings.Contains(d, "203.0.113.0/28") {
				t.Errorf("%s does not name the management CIDR", obj.Metadata.Name)
			}
		}
	}
	want := "t1route-management-guard-allow-1 Admin,t1route-management-guard-allow-2 Admin,t1route-management-guard-allow-3 Admin,t1route-management-guard-deny Admin"
	if strings.Join(guards, ",") != want {
		t.Errorf("guard policies %v, want %s", guards, want)
	}
	plain, _ := Manifests(cfg, config.FromMap(configtest.ValidEnv()), Options{Image: "img:1"})
	if strings.Contains(string(plain), policy.GuardPolicyPrefix) {
		t.Error("a guard without a management CIDR")
	}
	for _, r := range AgentRules() {
		if strings.Join(r.Resources, ",") == "clusternetworkpolicies" && strings.Join(r.Verbs, ",") == "list,watch" {
			return
		}
	}
	t.Error("the agent may not watch ClusterNetworkPolicies")
}
