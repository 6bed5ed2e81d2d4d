package render

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/deploy/image/builder"
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

// podSpec returns the pod template spec of the named workload kind.
func podSpec(t *testing.T, objs []map[string]any, kind string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind {
			return o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		}
	}
	t.Fatalf("no %s", kind)
	return nil
}

func container(t *testing.T, spec map[string]any, name string) map[string]any {
	t.Helper()
	for _, key := range []string{"initContainers", "containers"} {
		list, _ := spec[key].([]any)
		for _, c := range list {
			if c.(map[string]any)["name"] == name {
				return c.(map[string]any)
			}
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

func render(t *testing.T, o Options) []map[string]any {
	t.Helper()
	env := configtest.ValidEnv()
	cfg, _ := config.Load(config.FromMap(env))
	out, err := Manifests(cfg, config.FromMap(env), o)
	if err != nil {
		t.Fatal(err)
	}
	return docs(t, out)
}

// The controller reaches the API server before any pod route exists: host
// networking, its port a node port, one replica per node, so rollouts
// replace one replica at a time without a surge.
func TestControllerRunsOnTheHostNetwork(t *testing.T) {
	for _, port := range []int32{0, 9443} {
		spec := podSpec(t, render(t, Options{Image: "r.example/t1route:v1", ControllerPort: port}), "Deployment")
		want := port
		if port == 0 {
			want = DefaultControllerPort
		}
		if spec["hostNetwork"] != true || spec["dnsPolicy"] != "ClusterFirstWithHostNet" {
			t.Errorf("port %d: hostNetwork %v, dnsPolicy %v", port, spec["hostNetwork"], spec["dnsPolicy"])
		}
		b, _ := yaml.Marshal(spec["affinity"])
		if !strings.Contains(string(b), "requiredDuringSchedulingIgnoredDuringExecution") || !strings.Contains(string(b), "kubernetes.io/hostname") {
			t.Errorf("no required anti-affinity per node:\n%s", b)
		}
		c := container(t, spec, "controller")
		cb, _ := yaml.Marshal(c)
		// A rollout on two nodes: no surge pod (it could go nowhere), one
		// replica replaced at a time.
		var strategy any
		for _, o := range render(t, Options{Image: "r.example/t1route:v1", ControllerPort: port}) {
			if o["kind"] == "Deployment" {
				strategy = o["spec"].(map[string]any)["strategy"]
			}
		}
		if sb, _ := yaml.Marshal(strategy); string(sb) != "rollingUpdate:\n  maxSurge: 0\n  maxUnavailable: 1\ntype: RollingUpdate\n" {
			t.Errorf("port %d: controller Deployment strategy:\n%s", port, sb)
		}
		if !strings.Contains(string(cb), fmt.Sprintf("--metrics-bind-address=:%d", want)) || !strings.Contains(string(cb), fmt.Sprintf("hostPort: %d", want)) ||
			!strings.Contains(string(cb), fmt.Sprintf("containerPort: %d", want)) {
			t.Errorf("port %d: controller does not serve on %d:\n%s", port, want, cb)
		}
	}
	env := configtest.ValidEnv()
	cfg, _ := config.Load(config.FromMap(env))
	if _, err := Manifests(cfg, config.FromMap(env), Options{Image: "r.example/t1route:v1", ControllerPort: 70000}); err == nil || !strings.Contains(err.Error(), "70000") {
		t.Errorf("port 70000 accepted: %v", err)
	}
}

// The agent pod's containers run the node image (Open vSwitch, ovs-ofctl,
// sh); the kernel datapath gets SYS_MODULE and /lib/modules, the userspace
// one /dev/net/tun and neither of those.
func TestAgentPerDatapath(t *testing.T) {
	cases := []struct {
		datapath, ovsImage, wantImage string
		wantModules, wantTun          bool
	}{
		{"", "", "r.example/t1route-node:v1", true, false},
		{"system", "", "r.example/t1route-node:v1", true, false},
		{"netdev", "", "r.example/t1route-node:v1", false, true},
		{"netdev", "r.example/my-node:2", "r.example/my-node:2", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.datapath+" "+tc.ovsImage, func(t *testing.T) {
			objs := render(t, Options{Image: "r.example/t1route:v1", OVSImage: tc.ovsImage, DatapathType: tc.datapath})
			spec := podSpec(t, objs, "DaemonSet")
			for _, name := range []string{"ip-forward", "ovs", "agent"} {
				if img := container(t, spec, name)["image"]; img != tc.wantImage {
					t.Errorf("%s runs %v, want %s", name, img, tc.wantImage)
				}
			}
			ovsC := container(t, spec, "ovs")
			b, _ := yaml.Marshal(ovsC)
			s := string(b)
			if !strings.Contains(s, "/usr/local/bin/start-ovs") || !strings.Contains(s, "spec.nodeName") {
				t.Errorf("ovs container does not run start-ovs with NODE_NAME:\n%s", s)
			}
			for _, c := range []string{"NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK"} {
				if !strings.Contains(s, c) {
					t.Errorf("ovs lacks %s", c)
				}
			}
			if got := strings.Contains(s, "SYS_MODULE"); got != tc.wantModules {
				t.Errorf("SYS_MODULE %v, want %v", got, tc.wantModules)
			}
			if got := strings.Contains(s, "/lib/modules"); got != tc.wantModules {
				t.Errorf("/lib/modules mounted %v, want %v", got, tc.wantModules)
			}
			if got := strings.Contains(s, "/dev/net/tun"); got != tc.wantTun {
				t.Errorf("/dev/net/tun mounted %v, want %v", got, tc.wantTun)
			}
			vb, _ := yaml.Marshal(spec["volumes"])
			if got := strings.Contains(string(vb), "CharDevice"); got != tc.wantTun {
				t.Errorf("tun CharDevice volume %v, want %v:\n%s", got, tc.wantTun, vb)
			}
			if got := strings.Contains(string(vb), "/lib/modules"); got != tc.wantModules {
				t.Errorf("modules volume %v, want %v", got, tc.wantModules)
			}
			ab, _ := yaml.Marshal(container(t, spec, "agent"))
			if !strings.Contains(string(ab), "mountPath: /var/run/openvswitch") {
				t.Errorf("agent does not mount /var/run/openvswitch (OVSDB and the CNI plugin's socket):\n%s", ab)
			}
		})
	}
}

// render's default node image is the one make image builds.
func TestNodeImageIsWhatMakeImageBuilds(t *testing.T) {
	for _, ref := range []string{"ghcr.io/t1route/t1route:latest", "127.0.0.1:5000/t1route:dev", "t1route:v2", "r.example/a/b/t1route:v1.2.3"} {
		got, err := NodeImage(ref)
		want, werr := builder.NodeRef(ref)
		if err != nil || werr != nil || got != want {
			t.Errorf("NodeImage(%q) = %q, %v; make image builds %q, %v", ref, got, err, want, werr)
		}
	}
	for _, bad := range []string{"UPPER/case:x", "r.example/t1route@sha256:" + strings.Repeat("a", 64)} {
		if _, err := NodeImage(bad); err == nil {
			t.Errorf("NodeImage(%q) accepted", bad)
		}
	}
}
