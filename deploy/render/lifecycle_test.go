package render

import (
	"testing"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
)

// The agent DaemonSet upgrades with a surge (the new pod beside the old,
// none unavailable: the handover of agent/handover.go), and the agent gets
// the management CIDR from the settings, to guard pods before any policy.
func TestAgentUpgradesWithSurgeAndKnowsTheGuard(t *testing.T) {
	env := configtest.ValidEnv()
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/24"
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	out, err := Manifests(cfg, config.FromMap(env), Options{Image: "r.example/t1route:v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range docs(t, out) {
		if o["kind"] != "DaemonSet" {
			continue
		}
		spec := o["spec"].(map[string]any)
		ru, _ := spec["updateStrategy"].(map[string]any)["rollingUpdate"].(map[string]any)
		if ru["maxSurge"] != float64(1) || ru["maxUnavailable"] != float64(0) {
			t.Errorf("agent update strategy %v, want maxSurge 1, maxUnavailable 0", spec["updateStrategy"])
		}
		found := false
		for _, c := range spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any) {
			c := c.(map[string]any)
			if c["name"] != "agent" {
				continue
			}
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				if e["name"] != "NSXT_MANAGEMENT_CIDR" {
					continue
				}
				ref := e["valueFrom"].(map[string]any)["configMapKeyRef"].(map[string]any)
				found = ref["name"] == ConfigMapName && ref["key"] == "NSXT_MANAGEMENT_CIDR" && ref["optional"] == true
			}
		}
		if !found {
			t.Error("the agent does not get NSXT_MANAGEMENT_CIDR from the settings ConfigMap")
		}
		return
	}
	t.Fatal("no DaemonSet rendered")
}
