package render

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
	"github.com/t1route/t1route/podroute/policy"
)

// The manifests carry the ClusterNetworkPolicy CRD first and never objects
// of its kind (one kubectl apply could not create them before the CRD is
// established): the guard's settings go to the controller, which keeps the
// guard (podroute/guard) and may write ClusterNetworkPolicies for it.
func TestManagementGuardIsTheControllers(t *testing.T) {
	env := configtest.ValidEnv()
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	env["NSXT_MANAGEMENT_ALLOWED_PODS"] = "tools:app=backup"
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	out, err := Manifests(cfg, config.FromMap(env), Options{Image: "img:1"})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "\n---\n")
	if !strings.Contains(docs[1], "name: clusternetworkpolicies.policy.networking.k8s.io") {
		t.Fatalf("the CRD is not the first object:\n%.300s", docs[1])
	}
	for _, d := range docs {
		var obj struct {
			Kind string
			Data map[string]string
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ClusterNetworkPolicy":
			t.Errorf("a ClusterNetworkPolicy in the manifests: the first kubectl apply would fail on it\n%s", d)
		case "ConfigMap":
			if obj.Data["NSXT_MANAGEMENT_CIDR"] != "203.0.113.0/28" || obj.Data["NSXT_MANAGEMENT_ALLOWED_PODS"] != "tools:app=backup" {
				t.Errorf("the controller's settings lack the guard: %v", obj.Data)
			}
		}
	}
	if strings.Contains(string(out), policy.GuardPolicyPrefix) {
		t.Error("guard policies rendered")
	}
	var writes bool
	for _, r := range ControllerClusterRules() {
		if slices.Equal(r.Resources, []string{"clusternetworkpolicies"}) && slices.Contains(r.Verbs, "patch") && slices.Contains(r.Verbs, "delete") {
			writes = true
		}
	}
	if !writes {
		t.Error("the controller may not apply and delete the guard's ClusterNetworkPolicies")
	}
	for _, r := range AgentRules() {
		if strings.Join(r.Resources, ",") == "clusternetworkpolicies" && strings.Join(r.Verbs, ",") == "list,watch" {
			return
		}
	}
	t.Error("the agent may not watch ClusterNetworkPolicies")
}

// Changed settings change the controller's pod template (so applying them
// rolls the controller); the same settings render the same template, and
// credentials do not enter the hash.
func TestConfigHashRollsTheController(t *testing.T) {
	hash := func(env map[string]string) string {
		t.Helper()
		cfg, problems := config.Load(config.FromMap(env))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		out, err := Manifests(cfg, config.FromMap(env), Options{Image: "img:1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range strings.Split(string(out), "\n---\n") {
			var dep appsv1.Deployment
			if err := yaml.Unmarshal([]byte(d), &dep); err == nil && dep.Kind == "Deployment" {
				return dep.Spec.Template.Annotations[ConfigHashAnnotation]
			}
		}
		t.Fatal("no Deployment")
		return ""
	}
	base := hash(configtest.ValidEnv())
	if len(base) != 64 || hash(configtest.ValidEnv()) != base {
		t.Fatalf("hash %q: want a stable sha256", base)
	}
	changed := configtest.ValidEnv()
	changed["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	if hash(changed) == base {
		t.Error("a new setting left the controller's template unchanged")
	}
	rotated := configtest.ValidEnv()
	rotated["NSXT_PASSWORD"] = "Another-S3cret"
	if hash(rotated) != base {
		t.Error("the password entered the hash")
	}
}
