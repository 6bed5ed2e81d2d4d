package render

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/config/configtest"
	"github.com/t1route/t1route/podroute/guard"
)

func renderEnv(t *testing.T, env map[string]string, o Options) []map[string]any {
	t.Helper()
	cfg, problems := config.Load(config.FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if o.Image == "" {
		o.Image = "r.example/t1route:v1"
	}
	out, err := Manifests(cfg, config.FromMap(env), o)
	if err != nil {
		t.Fatal(err)
	}
	return docs(t, out)
}

func guardEnv() map[string]string {
	env := configtest.ValidEnv()
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	return env
}

func yes() *bool { return ptr(true) }
func no() *bool  { return ptr(false) }

// The controller's ClusterRole grants nothing on ClusterNetworkPolicies
// without a guard; with one, get/create/patch/delete on the guard's own
// names only (its install's), and never list or watch (which cannot be
// limited to names).
func TestControllerMayTouchOnlyTheGuardsPolicies(t *testing.T) {
	cnpRules := func(objs []map[string]any, role string) (rules []map[string]any) {
		for _, o := range objs {
			if name, _, _ := unstructured.NestedString(o, "metadata", "name"); o["kind"] == "ClusterRole" && name == role {
				list, _, _ := unstructured.NestedSlice(o, "rules")
				for _, r := range list {
					b, _ := yaml.Marshal(r)
					if strings.Contains(string(b), "clusternetworkpolicies") {
						rules = append(rules, r.(map[string]any))
					}
				}
			}
		}
		return rules
	}
	if r := cnpRules(renderEnv(t, configtest.ValidEnv(), Options{}), ControllerName); len(r) != 0 {
		t.Errorf("without a guard the controller may still %v", r)
	}
	for _, ns := range []string{DefaultNamespace, "team-b"} {
		objs := renderEnv(t, guardEnv(), Options{Namespace: ns, CreateNamespace: yes()})
		rules := cnpRules(objs, ClusterScopedName(ns, ControllerName))
		if len(rules) != 1 {
			t.Fatalf("%s: ClusterNetworkPolicy rules %v, want one", ns, rules)
		}
		names, _, _ := unstructured.NestedStringSlice(rules[0], "resourceNames")
		verbs, _, _ := unstructured.NestedStringSlice(rules[0], "verbs")
		if !slices.Equal(names, GuardOwner(ns).Names()) || !slices.Equal(verbs, []string{"get", "create", "patch", "delete"}) {
			t.Errorf("%s: the rule grants %v on %v", ns, verbs, names)
		}
		want := guard.GuardPolicyPrefix + "-deny"
		if ns != DefaultNamespace {
			want = guard.GuardPolicyPrefix + "-" + ns + "-deny"
		}
		if !slices.Contains(names, want) || len(names) != config.MaxGuardSelectors+1 {
			t.Errorf("%s: names %v lack %s", ns, names, want)
		}
		// Every policy the guard can create is among the names.
		allowed := make([]config.GuardSelector, config.MaxGuardSelectors)
		for i := range allowed {
			allowed[i] = config.DefaultGuardSelectors()[0]
		}
		cfg, _ := config.Load(config.FromMap(guardEnv()))
		ps, err := guard.ManagementGuardOf(GuardOwner(ns), cfg.Guard.CIDRs, allowed)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if !slices.Contains(names, p.Name) {
				t.Errorf("%s: the guard's %s is not granted", ns, p.Name)
			}
		}
	}
}

// Namespaces: DNS-1123 labels only, each error naming the flag; another
// namespace than the default one needs an explicit choice; the namespaces
// every cluster has are never created; an existing namespace is neither
// rendered nor relabeled.
func TestNamespaceChoice(t *testing.T) {
	cfg, _ := config.Load(config.FromMap(configtest.ValidEnv()))
	bad := []struct {
		o    Options
		want string
	}{
		{Options{Namespace: "Bad_NS", CreateNamespace: yes()}, `--namespace "Bad_NS"`},
		{Options{Namespace: strings.Repeat("n", 70), CreateNamespace: no()}, "must be no more than 63 characters"},
		{Options{Namespace: "-ops", CreateNamespace: no()}, "DNS-1123 label"},
		{Options{Namespace: "ops"}, "--create-namespace"},
		{Options{Namespace: "kube-system", CreateNamespace: yes()}, "--create-namespace=false"},
		{Options{Namespace: "default", CreateNamespace: yes()}, "exists in every cluster"},
	}
	for _, tc := range bad {
		tc.o.Image = "r.example/t1route:v1"
		_, err := Manifests(cfg, config.FromMap(configtest.ValidEnv()), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--namespace") {
			t.Errorf("%+v: %v, want an error naming --namespace and %q", tc.o, err, tc.want)
		}
	}
	for _, tc := range []struct {
		o             Options
		wantNamespace bool
	}{
		{Options{}, true},
		{Options{Namespace: "ops", CreateNamespace: yes()}, true},
		{Options{Namespace: "ops", CreateNamespace: no()}, false},
		{Options{Namespace: "kube-system", CreateNamespace: no()}, false},
	} {
		objs := renderEnv(t, configtest.ValidEnv(), tc.o)
		var got bool
		for _, o := range objs {
			if o["kind"] == "Namespace" {
				got = true
				l, _, _ := unstructured.NestedStringMap(o, "metadata", "labels")
				if l[OwnedNamespaceLabel] != OwnedNamespaceValue || l["pod-security.kubernetes.io/enforce"] != "privileged" || l[InstanceLabel] != "" {
					t.Errorf("%+v: Namespace labels %v", tc.o, l)
				}
			}
		}
		if got != tc.wantNamespace {
			t.Errorf("%+v: Namespace rendered %v, want %v", tc.o, got, tc.wantNamespace)
		}
	}
}

// Two installs share only the upstream CRDs: every other cluster-scoped
// object is named for its install, every object of an install carries its
// instance label, and the shared ones (CRDs, the Namespace) do not.
func TestInstallsDoNotCollide(t *testing.T) {
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "ValidatingAdmissionPolicy": true,
		"ValidatingAdmissionPolicyBinding": true, "CustomResourceDefinition": true, "Namespace": true}
	names := func(ns string) map[string]bool {
		out := map[string]bool{}
		for _, o := range renderEnv(t, guardEnv(), Options{Namespace: ns, CreateNamespace: yes()}) {
			kind := o["kind"].(string)
			name, _, _ := unstructured.NestedString(o, "metadata", "name")
			l, _, _ := unstructured.NestedStringMap(o, "metadata", "labels")
			shared := kind == "CustomResourceDefinition" || kind == "Namespace"
			if got := l[InstanceLabel]; shared != (got == "") || (!shared && got != ns) {
				t.Errorf("%s: %s %s has instance label %q", ns, kind, name, got)
			}
			if clusterScoped[kind] {
				out[kind+"/"+name] = true
			}
		}
		return out
	}
	a, b := names(DefaultNamespace), names("team-b")
	var shared []string
	for k := range a {
		if b[k] {
			shared = append(shared, k)
		}
	}
	slices.Sort(shared)
	if want := []string{"CustomResourceDefinition/clusternetworkpolicies.policy.networking.k8s.io", "CustomResourceDefinition/t1routeagentinfos.t1route.io"}; !slices.Equal(shared, want) {
		t.Errorf("two installs share %v, want only %v", shared, want)
	}
	if !a["ClusterRole/t1route-controller"] || !b["ClusterRole/t1route-controller-team-b"] {
		t.Errorf("names: %v %v", a, b)
	}
}

// Every container of both pods: the runtime's default seccomp profile, a
// read-only root filesystem, no privilege escalation but for the one
// privileged init container, and a writable mount for each place it
// writes.
func TestPodsAreHardened(t *testing.T) {
	writes := map[string][]string{
		"Deployment/controller": nil,
		"DaemonSet/ovs":         {"/var/run/openvswitch", "/etc/openvswitch", "/var/log/openvswitch", "/tmp"},
		"DaemonSet/agent":       {"/var/run/openvswitch", "/var/run/t1route", "/opt/cni/bin", "/etc/cni/net.d"},
		"DaemonSet/ip-forward":  nil,
	}
	for _, datapath := range DatapathTypes {
		objs := renderEnv(t, configtest.ValidEnv(), Options{DatapathType: datapath})
		seen := 0
		for _, kind := range []string{"Deployment", "DaemonSet"} {
			spec := podSpec(t, objs, kind)
			podSeccomp, _, _ := unstructured.NestedString(spec, "securityContext", "seccompProfile", "type")
			for _, key := range []string{"initContainers", "containers"} {
				list, _, _ := unstructured.NestedSlice(spec, key)
				for _, c := range list {
					c := c.(map[string]any)
					id := kind + "/" + c["name"].(string)
					seen++
					seccomp, _, _ := unstructured.NestedString(c, "securityContext", "seccompProfile", "type")
					if seccomp == "" {
						seccomp = podSeccomp
					}
					privileged, _, _ := unstructured.NestedBool(c, "securityContext", "privileged")
					ro, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem")
					escalation, found, _ := unstructured.NestedBool(c, "securityContext", "allowPrivilegeEscalation")
					if seccomp != "RuntimeDefault" || !ro || (!privileged && (!found || escalation)) {
						t.Errorf("%s %s: seccomp %q, readOnlyRootFilesystem %v, allowPrivilegeEscalation %v (set %v)", datapath, id, seccomp, ro, escalation, found)
					}
					if privileged && id != "DaemonSet/ip-forward" {
						t.Errorf("%s is privileged", id)
					}
					want, ok := writes[id]
					if !ok {
						t.Errorf("a container %s this test does not know: say what it writes", id)
					}
					mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
					for _, path := range want {
						var writable bool
						for _, m := range mounts {
							m := m.(map[string]any)
							if m["mountPath"] == path && m["readOnly"] != true {
								writable = true
							}
						}
						if !writable {
							t.Errorf("%s writes %s, which is no writable mount", id, path)
						}
					}
				}
			}
		}
		if seen != len(writes) {
			t.Errorf("%d containers, want %d", seen, len(writes))
		}
	}
}

// render's image: its own release's by default (a development build must
// be given one), never :latest, and a digest taken as given.
func TestImages(t *testing.T) {
	if img, err := DefaultImage("v1.4.2"); err != nil || img != "ghcr.io/t1route/t1route:v1.4.2" {
		t.Errorf("release: %q %v", img, err)
	}
	for _, v := range []string{"dev", "a09621a", "v1.4.2-3-ga09621a", "v1.4.2-dirty", "a09621a-dirty", ""} {
		if img, err := DefaultImage(v); err == nil || !strings.Contains(err.Error(), "development build") || !strings.Contains(err.Error(), "--image") {
			t.Errorf("version %q: %q %v", v, img, err)
		}
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	nodeDigest := "sha256:" + strings.Repeat("cd", 32)
	cfg, _ := config.Load(config.FromMap(configtest.ValidEnv()))
	for _, tc := range []struct {
		o    Options
		want string // error substring; "" renders
	}{
		{Options{Image: "r.example/t1route:latest"}, "--image r.example/t1route:latest: no :latest"},
		{Options{Image: "r.example/t1route"}, "no :latest"},
		{Options{Image: "127.0.0.1:5000/t1route"}, "no :latest"},
		{Options{Image: "r.example/t1route:v1", OVSImage: "r.example/node:latest"}, "--ovs-image"},
		{Options{Image: "r.example/t1route@" + digest}, "--ovs-image"},
		{Options{Image: "UPPER/t1route:v1"}, "--image"},
		{Options{Image: "r.example/t1route@" + digest, OVSImage: "r.example/t1route-node@" + nodeDigest}, ""},
		{Options{Image: "r.example/t1route:v1@" + digest, OVSImage: "r.example/t1route-node:v1@" + nodeDigest}, ""},
		{Options{Image: "127.0.0.1:5000/t1route:v1"}, ""},
	} {
		out, err := Manifests(cfg, config.FromMap(configtest.ValidEnv()), tc.o)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.o, err)
			continue
		}
		objs := docs(t, out)
		if img := container(t, podSpec(t, objs, "Deployment"), "controller")["image"]; img != tc.o.Image {
			t.Errorf("controller image %v, want %s", img, tc.o.Image)
		}
		if tc.o.OVSImage != "" {
			if img := container(t, podSpec(t, objs, "DaemonSet"), "agent")["image"]; img != tc.o.OVSImage {
				t.Errorf("agent image %v, want %s", img, tc.o.OVSImage)
			}
		}
	}
}
