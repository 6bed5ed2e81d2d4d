package render

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
)

// docs splits rendered YAML into objects.
func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range strings.Split(string(b), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, d)
		}
		if m != nil && m["kind"] != nil {
			out = append(out, m)
		}
	}
	return out
}

func kinds(objs []map[string]any) map[string]int {
	k := map[string]int{}
	for _, o := range objs {
		k[o["kind"].(string)]++
	}
	return k
}

// manifests renders env with default options.
func manifests(t *testing.T, env map[string]string) []map[string]any {
	t.Helper()
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	out, err := Manifests(cfg, config.FromMap(env), Options{Image: "ghcr.io/t1route/t1route:test"})
	if err != nil {
		t.Fatal(err)
	}
	return docs(t, out)
}

func TestManifestsPerAuthMode(t *testing.T) {
	pki := configtest.NewPKI(t)
	certPEM, keyPEM := pki.CertPEM, pki.KeyPEM
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600) //nolint:errcheck
	os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600)  //nolint:errcheck
	withAuth := func(extra map[string]string) map[string]string {
		env := configtest.ValidEnv()
		delete(env, "NSXT_USERNAME")
		delete(env, "NSXT_PASSWORD")
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	cases := []struct {
		name       string
		env        map[string]string
		secrets    []string // values that must appear only in the credentials Secret
		wantSecret bool
	}{
		{"password", configtest.ValidEnv(), []string{"Very-S3cret-pw"}, true},
		{"client certificate", withAuth(map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64(certPEM), "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(keyPEM)}),
			[]string{configtest.B64(keyPEM)}, true},
		// Files are on this machine, not on the nodes: their content is rendered.
		{"client certificate files", withAuth(map[string]string{"NSXT_CLIENT_CERT_FILE": filepath.Join(dir, "tls.crt"), "NSXT_CLIENT_KEY_FILE": filepath.Join(dir, "tls.key")}),
			[]string{"PRIVATE KEY"}, true},
		{"vmc token", withAuth(map[string]string{"NSXT_VMC_AUTH_HOST": "console.example.com", "NSXT_VMC_ACCESS_TOKEN": "vmc-T0ken-value"}),
			[]string{"vmc-T0ken-value"}, true},
		{"kubernetes secret", withAuth(map[string]string{"NSXT_SECRET_NAMESPACE": "t1route-system", "NSXT_SECRET_NAME": "nsx-credentials"}), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := manifests(t, tc.env)
			k := kinds(objs)
			if k["Deployment"] != 1 || k["DaemonSet"] != 1 || k["ConfigMap"] != 1 || k["Namespace"] != 1 || k["ServiceAccount"] != 2 {
				t.Fatalf("objects: %v", k)
			}
			if got := k["Secret"] == 1; got != tc.wantSecret {
				t.Fatalf("credentials Secret rendered: %v, want %v", got, tc.wantSecret)
			}
			for _, o := range objs {
				b, _ := yaml.Marshal(o)
				for _, s := range tc.secrets {
					if strings.Contains(string(b), s) != (o["kind"] == "Secret") {
						t.Fatalf("%q in a %s: %v", s, o["kind"], strings.Contains(string(b), s))
					}
				}
				if o["kind"] == "ConfigMap" && (strings.Contains(string(b), "_FILE") || strings.Contains(string(b), "NSXT_USERNAME")) {
					t.Fatalf("a file path or credential in the ConfigMap:\n%s", b)
				}
				if o["kind"] == "ClusterRole" && strings.Contains(string(b), "secrets") {
					t.Fatalf("a ClusterRole grants Secrets:\n%s", b)
				}
				if o["kind"] == "Role" && strings.Contains(string(b), "secrets") {
					if tc.wantSecret {
						t.Fatal("a Secrets Role without Secret authentication")
					}
					if !strings.Contains(string(b), "nsx-credentials") || !strings.Contains(string(b), "resourceNames") {
						t.Fatalf("the Secrets Role is not limited to the named Secret:\n%s", b)
					}
				}
			}
		})
	}
}

// The permissions doctor checks are exactly the rendered controller RBAC.
func TestControllerPermissionsAreTheRenderedRBAC(t *testing.T) {
	for _, secret := range []bool{false, true} {
		env := configtest.ValidEnv()
		if secret {
			env = map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": "nsx.example.com", "NSXT_ROUTER_PATH": "/infra/tier-1s/t1",
				"CLUSTER_CIDR": "100.96.0.0/11", "NSXT_SECRET_NAMESPACE": "creds", "NSXT_SECRET_NAME": "nsx"}
		}
		cfg, _ := config.Load(config.FromMap(env))
		var rendered []authzv1.ResourceAttributes
		for _, o := range manifests(t, env) {
			kind := o["kind"].(string)
			md := o["metadata"].(map[string]any)
			if (kind != "ClusterRole" && kind != "Role") || !strings.HasPrefix(md["name"].(string), ControllerName) {
				continue
			}
			b, _ := yaml.Marshal(o)
			var role rbacv1.Role
			if err := yaml.Unmarshal(b, &role); err != nil {
				t.Fatal(err)
			}
			rendered = append(rendered, attributes(role.Rules, role.Namespace)...)
		}
		perms := ControllerPermissions(cfg, DefaultNamespace)
		if len(perms) != len(rendered) {
			t.Fatalf("secret %v: %d permissions checked, %d rendered", secret, len(perms), len(rendered))
		}
		for _, p := range rendered {
			if !slices.Contains(perms, p) {
				t.Errorf("secret %v: rendered %+v is not checked", secret, p)
			}
		}
		watchesSecret := slices.Contains(perms, authzv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "creds", Name: "nsx"})
		if watchesSecret != secret {
			t.Errorf("secret auth %v: Secret watch checked %v", secret, watchesSecret)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, _ := config.Load(config.FromMap(configtest.ValidEnv()))
	out, err := Manifests(cfg, config.FromMap(configtest.ValidEnv()), Options{Image: "img:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: " + DefaultNamespace, "--datapath-type=system", "image: img:1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in the defaults' manifests", want)
		}
	}
	if strings.Contains(string(out), "--adopt-cloud-provider-routes") {
		t.Error("adoption is on by default")
	}
}
