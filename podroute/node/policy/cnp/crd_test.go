package cnp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestCRD(t *testing.T) {
	var crd struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Group, Scope string
			Names        struct{ Plural, Kind string }
			Versions     []struct {
				Name            string
				Served, Storage bool
			}
		}
	}
	if err := yaml.Unmarshal(CRD(), &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Kind != "CustomResourceDefinition" || crd.Metadata.Name != CRDName || crd.Spec.Group != GroupVersion.Group ||
		crd.Spec.Names.Plural != Resource.Resource || crd.Spec.Names.Kind != Kind || crd.Spec.Scope != "Cluster" {
		t.Fatalf("not the ClusterNetworkPolicy CRD: %+v", crd)
	}
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage && v.Served {
			storage = v.Name
		}
	}
	if storage != GroupVersion.Version {
		t.Fatalf("storage version %q, want %s", storage, GroupVersion.Version)
	}
}

// The embedded CRD is upstream's file unchanged (checked when the module
// is in the module cache; `make update-crd` puts it there).
func TestCRDIsUpstreams(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skip("no go command")
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "sigs.k8s.io", "network-policy-api@v0.3.0", "config", "crd", "standard",
		"policy.networking.k8s.io_clusternetworkpolicies.yaml")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("upstream module not in the module cache (%v); make update-crd fetches it", err)
	}
	got := CRD()
	for bytes.HasPrefix(got, []byte("#")) {
		got = got[bytes.IndexByte(got, '\n')+1:]
	}
	if !bytes.Equal(got, want) {
		t.Fatal("crd.yaml differs from upstream's: run make update-crd")
	}
}
