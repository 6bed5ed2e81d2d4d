package render

import (
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
	"github.com/t1route/t1route/podroute/version"
)

// Without --image, render installs its own version's images; every object
// t1route owns says which version wrote it, and no selector does (selectors
// are immutable: an upgrade must not need to replace the workloads).
func TestManifestsCarryTheVersion(t *testing.T) {
	env := configtest.ValidEnv()
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	img, err := DefaultImage(version.Tag())
	if err != nil {
		t.Fatal(err)
	}
	out, err := Manifests(cfg, config.FromMap(env), Options{Image: img})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ghcr.io/t1route/t1route:v" + version.Version; !strings.Contains(string(out), "image: "+want+"\n") {
		t.Errorf("default image is not %s", want)
	}
	if !strings.Contains(string(out), "image: ghcr.io/t1route/t1route-node:v"+version.Version+"\n") {
		t.Errorf("default node image is not this version's")
	}
	if strings.Contains(string(out), ":latest") {
		t.Error("the manifests name a :latest image")
	}
	labelled := 0
	for _, o := range docs(t, out) {
		if o["kind"] == "CustomResourceDefinition" && !strings.Contains(o["metadata"].(map[string]any)["name"].(string), "t1route") {
			continue // the upstream ClusterNetworkPolicy CRD, as published
		}
		md := o["metadata"].(map[string]any)
		labels, _ := md["labels"].(map[string]any)
		if labels[VersionLabel] != version.Version {
			t.Errorf("%s %s: %s=%v, want %s", o["kind"], md["name"], VersionLabel, labels[VersionLabel], version.Version)
			continue
		}
		labelled++
		spec, _ := o["spec"].(map[string]any)
		if sel, ok := spec["selector"].(map[string]any); ok {
			if ml, _ := sel["matchLabels"].(map[string]any); ml[VersionLabel] != nil {
				t.Errorf("%s %s: the selector names the version", o["kind"], md["name"])
			}
			tmpl := spec["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
			if tmpl[VersionLabel] != version.Version {
				t.Errorf("%s %s: pod template without the version label", o["kind"], md["name"])
			}
		}
	}
	if labelled < 10 {
		t.Errorf("only %d objects carry %s", labelled, VersionLabel)
	}
}
