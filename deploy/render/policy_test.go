package render

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"

	"github.com/t1route/t1route/podroute/guard"
)

// The manifests carry the ClusterNetworkPolicy CRD first and never objects
// of its kind (one kubectl apply could not create them before the CRD is
// established): the guard's settings go to the controller, which keeps the
// guard (podroute/guard) and may write ClusterNetworkPolicies for it.
func TestManagementGuardIsTheControllers(t *testing.T) {
	env := configtest.ValidEnv()
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	env["NSXT_MANAGEMENT_ALLOWED_PODS"] = "tools:app=backup"
	objs := manifests(t, env)
	if name, _, _ := unstructured.NestedString(objs[0], "metadata", "name"); objs[0]["kind"] != "CustomResourceDefinition" || name != "clusternetworkpolicies.policy.networking.k8s.io" {
		t.Fatalf("the CRD is not the first object: %v %s", objs[0]["kind"], name)
	}
	if n := kinds(objs)["ClusterNetworkPolicy"]; n > 0 {
		t.Errorf("%d ClusterNetworkPolicies in the manifests: the first kubectl apply would fail on them", n)
	}
	for _, o := range objs {
		if name, _, _ := unstructured.NestedString(o, "metadata", "name"); strings.HasPrefix(name, guard.GuardPolicyPrefix) {
			t.Errorf("guard policy %s rendered", name)
		}
		if o["kind"] == "ConfigMap" {
			data, _, _ := unstructured.NestedStringMap(o, "data")
			if data["NSXT_MANAGEMENT_CIDR"] != "203.0.113.0/28" || data["NSXT_MANAGEMENT_ALLOWED_PODS"] != "tools:app=backup" {
				t.Errorf("the controller's settings lack the guard: %v", data)
			}
		}
	}
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var writes bool
	for _, r := range ControllerClusterRules(cfg, DefaultNamespace) {
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
		for _, o := range manifests(t, env) {
			if o["kind"] == "Deployment" {
				h, _, _ := unstructured.NestedString(o, "spec", "template", "metadata", "annotations", ConfigHashAnnotation)
				return h
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
