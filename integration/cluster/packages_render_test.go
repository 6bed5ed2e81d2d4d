//go:build integration && e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/deploy/image/builder"
	"github.com/t1route/t1route/deploy/packaging"
	"github.com/t1route/t1route/podroute/config/configtest"
)

// packageTools are the CLIs make package-tools builds from the Go module
// proxy (HELM, YTT, KBLD, KAPP, IMGPKG name them).
type packageTools struct{ helm, ytt, kbld, kapp, imgpkg string }

func findPackageTools(t *testing.T) packageTools {
	t.Helper()
	get := func(env string) string {
		p := os.Getenv(env)
		if p == "" {
			t.Fatalf("%s is not set: run make e2e-packages (it builds helm, ytt, kbld, kapp and imgpkg into .cache/tools)", env)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (make package-tools builds it)", env, p, err)
		}
		return p
	}
	return packageTools{helm: get("HELM"), ytt: get("YTT"), kbld: get("KBLD"), kapp: get("KAPP"), imgpkg: get("IMGPKG")}
}

// valueSet is chart values and the `t1route render` invocation they must
// equal: the same settings as NSXT_* variables and render's flags.
type valueSet struct {
	name   string
	values map[string]any
}

func valueSets(t *testing.T) []valueSet {
	pki := configtest.NewPKI(t)
	base := func(extra map[string]any) map[string]any {
		cfg := map[string]any{"managerHost": "nsx.example.com", "routerPath": "/infra/tier-1s/t1-routable", "clusterCIDR": "100.96.0.0/11"}
		for k, v := range extra {
			cfg[k] = v
		}
		return cfg
	}
	return []valueSet{
		{"username/password, system datapath, every other value its default", map[string]any{
			"config":      base(nil),
			"credentials": map[string]any{"username": "admin", "password": "Very-S3cret-pw"}}},
		{"credentials from an existing Secret, netdev datapath, management guard, own namespace, port and registry", map[string]any{
			"namespace": "net-system", "image": "127.0.0.1:5000/t1route:v9", "datapathType": "netdev", "controllerPort": 9090,
			"config": base(map[string]any{"secretNamespace": "nsx-creds", "secretName": "nsx-credentials", "clusterName": "prod-east-1",
				"managementCIDR": "203.0.113.0/28", "managementAllowedPods": "tools:app=backup"})}},
		{"client certificate, dual-stack, pinned CA, session and remote auth set", map[string]any{
			"config": base(map[string]any{"clusterCIDR": "100.96.0.0/11,fd00:100:96::/48", "rootCADataB64": configtest.B64(pki.CAPEM),
				"sessionAuth": false, "remoteAuth": true}),
			"credentials": map[string]any{"clientCertData": configtest.B64(pki.CertPEM), "clientCertKeyData": configtest.B64(pki.KeyPEM)}}},
		{"VMC token, adopting cloud provider routes, node image by digest, node status QPS, unverified TLS", map[string]any{
			"adoptCloudProviderRoutes": true, "nodeImage": "registry.example.com/ovs/t1route-node@sha256:" + strings.Repeat("ab", 32),
			"config":      base(map[string]any{"vmcAuthHost": "console.cloud.vmware.com", "nodeStatusQPS": 100, "allowUnverifiedSSL": true}),
			"credentials": map[string]any{"vmcAccessToken": "vmc-T0ken-value"}}},
		{"several ways to authenticate (the client certificate wins), a Docker Hub image, guard on, netdev", map[string]any{
			"image": "t1route/t1route:v1", "datapathType": "netdev",
			"config": base(map[string]any{"secretNamespace": "nsx-creds", "secretName": "nsx-credentials", "managementCIDR": "203.0.113.0/28"}),
			"credentials": map[string]any{"username": "admin", "password": "pw", "clientCertData": configtest.B64(pki.CertPEM),
				"clientCertKeyData": configtest.B64(pki.KeyPEM)}}},
	}
}

// renderArgs are the environment and flags of `t1route render` equal to
// values: each NSXT_* value as its variable, the deployment values as
// render's flags (unset ones at the chart's defaults).
func renderArgs(t *testing.T, values map[string]any) (env, args []string) {
	t.Helper()
	str := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case int:
			return strconv.Itoa(x)
		}
		return fmt.Sprint(v)
	}
	get := func(path []string) (any, bool) {
		var cur any = values
		for _, p := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[p]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	flags := map[string]string{"namespace": "--namespace", "image": "--image", "nodeImage": "--ovs-image", "datapathType": "--datapath-type",
		"controllerPort": "--controller-port"}
	for _, v := range packaging.Values() {
		val, ok := get(v.Path)
		if v.Env != "" {
			if !ok && v.Default != nil {
				val, ok = v.Default, true
			}
			if ok {
				env = append(env, v.Env+"="+str(val))
			}
			continue
		}
		if !ok {
			val = v.Default
		}
		switch {
		case v.Key() == "adoptCloudProviderRoutes":
			if val == true {
				args = append(args, "--adopt-cloud-provider-routes")
			}
		case flags[v.Key()] != "":
			if s := str(val); s != "" {
				args = append(args, flags[v.Key()]+"="+s)
			}
		default:
			t.Fatalf("value %s has no render flag in this test", v.Key())
		}
	}
	// The chart and the package create their namespace.
	return env, append(args, "--create-namespace")
}

func writeValues(t *testing.T, values map[string]any) string {
	t.Helper()
	b, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	// Not in t.TempDir(): test names put commas and = in its path, which
	// helm -f and ytt --data-values-file read as separators.
	f, err := os.CreateTemp("", "t1route-values-*.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// runRender runs `t1route render` for values.
func runRender(t *testing.T, t1route string, values map[string]any) []byte {
	t.Helper()
	env, args := renderArgs(t, values)
	cmd := exec.Command(t1route, append([]string{"render"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("t1route render %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// helmEnv keeps helm's caches and configuration in a test directory.
func helmEnv(t *testing.T) []string {
	d := t.TempDir()
	return append(os.Environ(), "HELM_CACHE_HOME="+d+"/cache", "HELM_CONFIG_HOME="+d+"/config", "HELM_DATA_HOME="+d+"/data")
}

func runTool(t *testing.T, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// objects parses a YAML stream into canonical JSON by object key.
func objects(t *testing.T, b []byte) map[string]string {
	t.Helper()
	objs, err := packaging.SplitObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		j, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		k := packaging.ObjectKey(o)
		if _, dup := out[k]; dup {
			t.Errorf("%s twice", k)
		}
		out[k] = string(j)
	}
	return out
}

// sameObjects fails t unless want and got hold the same objects.
func sameObjects(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w, okw := want[k]
		g, okg := got[k]
		switch {
		case !okw:
			t.Errorf("%s has %s, render does not", what, k)
		case !okg:
			t.Errorf("%s lacks %s", what, k)
		case w != g:
			var wm, gm any
			json.Unmarshal([]byte(w), &wm) //nolint:errcheck
			json.Unmarshal([]byte(g), &gm) //nolint:errcheck
			if !reflect.DeepEqual(wm, gm) {
				wy, _ := yaml.Marshal(wm)
				gy, _ := yaml.Marshal(gm)
				t.Errorf("%s: %s differs from render's\n--- render:\n%s\n--- %s:\n%s", what, k, wy, what, gy)
			}
		}
	}
}

// helmTemplate runs helm template for values (CRDs included).
func helmTemplate(t *testing.T, tools packageTools, values map[string]any, extra ...string) ([]byte, error) {
	t.Helper()
	args := append([]string{"template", "t1route", filepath.Join(repoRoot(t), packaging.ChartDir), "--include-crds", "-f", writeValues(t, values)}, extra...)
	return runTool(t, helmEnv(t), tools.helm, args...)
}

// yttTemplate runs ytt over the package's templates with values as a data values file.
func yttTemplate(t *testing.T, tools packageTools, values map[string]any, extra ...string) ([]byte, error) {
	t.Helper()
	args := append([]string{"-f", filepath.Join(repoRoot(t), packaging.CarvelDir, "bundle", "config"), "--data-values-file", writeValues(t, values)}, extra...)
	return runTool(t, os.Environ(), tools.ytt, args...)
}

// withoutKappCRDAnnotations drops the annotations the package adds to the
// upstream CRD (kapp creates it when missing, never deletes it) and
// fails t if they are not there.
func withoutKappCRDAnnotations(t *testing.T, objs map[string]string) {
	t.Helper()
	for k, j := range objs {
		if !strings.Contains(k, "CustomResourceDefinition /clusternetworkpolicies.") {
			continue
		}
		var o map[string]any
		json.Unmarshal([]byte(j), &o) //nolint:errcheck
		md := o["metadata"].(map[string]any)
		ann, _ := md["annotations"].(map[string]any)
		for _, a := range []string{"kapp.k14s.io/create-strategy", "kapp.k14s.io/delete-strategy"} {
			if _, ok := ann[a]; !ok {
				t.Errorf("the package's ClusterNetworkPolicy CRD lacks %s", a)
			}
			delete(ann, a)
		}
		if len(ann) == 0 {
			delete(md, "annotations")
		}
		b, _ := json.Marshal(o)
		objs[k] = string(b)
	}
}

// templateSteps: helm template and ytt give render's objects for each value set.
func templateSteps(s *steps, tools packageTools, t1route string) {
	for _, vs := range valueSets(s.t) {
		s.step("helm template == t1route render: "+vs.name, func(t *testing.T) {
			want := objects(t, runRender(t, t1route, vs.values))
			out, err := helmTemplate(t, tools, vs.values)
			if err != nil {
				t.Fatal(err)
			}
			sameObjects(t, "helm template", want, objects(t, out))
		})
		s.step("ytt (the Carvel package) == t1route render: "+vs.name, func(t *testing.T) {
			want := objects(t, runRender(t, t1route, vs.values))
			out, err := yttTemplate(t, tools, vs.values)
			if err != nil {
				t.Fatal(err)
			}
			got := objects(t, out)
			withoutKappCRDAnnotations(t, got)
			sameObjects(t, "ytt", want, got)
		})
	}
}

// refusalSteps: helm lint passes; bad values are refused, naming the field.
func refusalSteps(s *steps, tools packageTools) {
	chart := filepath.Join(repoRoot(s.t), packaging.ChartDir)
	good := valueSets(s.t)[0].values
	with := func(path string, v any) map[string]any {
		b, _ := json.Marshal(good)
		var m map[string]any
		json.Unmarshal(b, &m) //nolint:errcheck
		parts := strings.Split(path, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			cur = cur[p].(map[string]any)
		}
		if v == nil {
			delete(cur, parts[len(parts)-1])
		} else {
			cur[parts[len(parts)-1]] = v
		}
		return m
	}
	bad := []struct {
		what   string
		values map[string]any
		want   string
	}{
		{"an unknown datapath", with("datapathType", "kernel"), "datapathType"},
		{"a port out of range", with("controllerPort", 70000), "controllerPort"},
		{"a misspelt setting", with("config.managerHsot", "nsx"), "managerHsot"},
		{"a boolean that is not one", with("config.allowUnverifiedSSL", "maybe"), "allowUnverifiedSSL"},
		{"no NSX Manager", with("config.managerHost", nil), "config.managerHost is required"},
		{"no way to authenticate", with("credentials.password", nil), "no way to authenticate"},
		{"an image without a tag", with("image", "ghcr.io/t1route/t1route"), "image"},
	}
	s.step("helm lint passes (defaults, and a complete configuration with --strict)", func(t *testing.T) {
		if out, err := runTool(t, helmEnv(t), tools.helm, "lint", chart); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
		if out, err := runTool(t, helmEnv(t), tools.helm, "lint", "--strict", chart, "-f", writeValues(t, good)); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	})
	s.step("helm refuses bad values, naming the field (values.schema.json, required values)", func(t *testing.T) {
		for _, b := range bad {
			out, err := helmTemplate(t, tools, b.values)
			if err == nil {
				t.Errorf("%s: helm template accepted it:\n%.300s", b.what, out)
				continue
			}
			if !strings.Contains(err.Error(), b.want) {
				t.Errorf("%s: the error does not name %q: %v", b.what, b.want, err)
			}
		}
	})
	s.step("ytt refuses bad data values, naming the field (the package's schema)", func(t *testing.T) {
		for _, b := range bad {
			out, err := yttTemplate(t, tools, b.values)
			if err == nil {
				t.Errorf("%s: ytt accepted it:\n%.300s", b.what, out)
				continue
			}
			if !strings.Contains(err.Error(), b.want) {
				t.Errorf("%s: the error does not name %q: %v", b.what, b.want, err)
			}
		}
	})
}

// bundleStep: the bundle make image built locks make image's own digests.
func bundleStep(s *steps, layoutDir string) {
	s.step("the Carvel bundle's .imgpkg/images.yml locks the digests of make image's images", func(t *testing.T) {
		idx, err := layout.ImageIndexFromPath(layoutDir)
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		digests, refs := map[string]string{}, map[string]string{}
		var lock []byte
		for _, d := range m.Manifests {
			ref := d.Annotations["org.opencontainers.image.ref.name"]
			repo := ref[:strings.LastIndex(ref, ":")]
			repo = repo[strings.LastIndex(repo, "/")+1:]
			digests[repo], refs[repo] = d.Digest.String(), ref
			if repo == "t1route-package" {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Config.Labels[builder.BundleLabel] != "true" {
					t.Errorf("the bundle image lacks the label %s", builder.BundleLabel)
				}
				if lock, err = builder.ReadBundleFile(img, ".imgpkg/images.yml"); err != nil {
					t.Fatal(err)
				}
				if _, err := builder.ReadBundleFile(img, "config/schema.yaml"); err != nil {
					t.Errorf("the bundle lacks config/schema.yaml: %v", err)
				}
			}
		}
		if lock == nil {
			t.Fatalf("no t1route-package bundle in %s (make image builds it): %v", layoutDir, refs)
		}
		var l struct {
			Kind   string
			Images []struct {
				Image       string
				Annotations map[string]string
			}
		}
		if err := yaml.Unmarshal(lock, &l); err != nil || l.Kind != "ImagesLock" {
			t.Fatalf("images.yml: %v\n%s", err, lock)
		}
		for _, repo := range []string{"t1route", "t1route-node"} {
			found := false
			for _, img := range l.Images {
				if strings.HasSuffix(img.Image, "/"+repo+"@"+digests[repo]) && img.Annotations["kbld.carvel.dev/id"] == refs[repo] {
					found = true
				}
			}
			if !found {
				t.Errorf("images.yml does not lock %s (%s) at make image's %s:\n%s", repo, refs[repo], digests[repo], lock)
			}
		}
		t.Logf("bundle %s (%s) locks %s and %s", refs["t1route-package"], digests["t1route-package"], digests["t1route"], digests["t1route-node"])
	})
}

// buildT1route builds t1route for render into a test directory.
func buildT1route(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := builder.GoBuild(context.Background(), repoRoot(t), dir, nil, "./cmd/t1route"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "t1route")
}
