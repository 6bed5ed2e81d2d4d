package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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

func render(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(&out, &errb, envOf(env))
	root.SetArgs(append([]string{"render"}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestRenderPerAuthMode(t *testing.T) {
	pki := newPKI(t)
	withAuth := func(extra map[string]string) map[string]string {
		env := validEnv()
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
		{"password", validEnv(), []string{"Very-S3cret-pw"}, true},
		{"client certificate", withAuth(map[string]string{"NSXT_CLIENT_CERT_DATA": b64(pki.certPEM), "NSXT_CLIENT_CERT_KEY_DATA": b64(pki.keyPEM)}),
			[]string{b64(pki.keyPEM)}, true},
		{"vmc token", withAuth(map[string]string{"NSXT_VMC_AUTH_HOST": "console.example.com", "NSXT_VMC_ACCESS_TOKEN": "vmc-T0ken-value"}),
			[]string{"vmc-T0ken-value"}, true},
		{"kubernetes secret", withAuth(map[string]string{"NSXT_SECRET_NAMESPACE": "t1route-system", "NSXT_SECRET_NAME": "nsx-credentials"}), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := render(t, tc.env)
			if err != nil {
				t.Fatalf("render: %v\n%s", err, stderr)
			}
			objs := docs(t, []byte(out))
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
					if strings.Contains(string(b), s) && o["kind"] != "Secret" {
						t.Fatalf("a credential is in a %s", o["kind"])
					}
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

func TestRenderRejectsBadConfiguration(t *testing.T) {
	env := validEnv()
	env["CLUSTER_CIDR"] = "100.96.0.0/33"
	out, stderr, err := render(t, env)
	if ee, ok := err.(exitError); !ok || ee.code != 2 || out != "" || !strings.Contains(stderr, "CLUSTER_CIDR") {
		t.Fatalf("err %v, stdout %q, stderr %q", err, out, stderr)
	}
	if _, stderr, err = render(t, validEnv(), "--datapath-type", "dpdk"); err == nil || !strings.Contains(stderr, "--datapath-type") {
		t.Fatalf("bad datapath type: %v %s", err, stderr)
	}
	env = validEnv()
	env["NSXT_POD_ROUTING_ENABLED"] = "false"
	if _, stderr, err = render(t, env); err == nil || !strings.Contains(stderr, "NSXT_POD_ROUTING_ENABLED") {
		t.Fatalf("disabled: %v %s", err, stderr)
	}
}

// deploy/base is render's output for placeholder settings: regenerate it
// with `make manifests` when render changes.
func TestDeployBaseIsCurrent(t *testing.T) {
	env := map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "CLUSTER_CIDR": "100.96.0.0/11", "CLUSTER_NAME": "change-me",
		"NSXT_MANAGER_HOST": "nsx.example.com", "NSXT_ROUTER_PATH": "/infra/tier-1s/change-me", "NSXT_USERNAME": "CHANGE-ME", "NSXT_PASSWORD": "CHANGE-ME"}
	out, _, err := render(t, env, "--image", "ghcr.io/t1route/t1route:latest")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../deploy/base/t1route.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(committed) {
		t.Fatal("deploy/base/t1route.yaml is not what render prints: run make manifests")
	}
}
