package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config/configtest"
	"github.com/t1route/t1route/podroute/version"
)

// containers maps "<kind>/<container>" to each container of the rendered
// workloads (init containers included).
func containers(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	all := map[string]map[string]any{}
	for _, d := range strings.Split(out, "\n---\n") {
		var o struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct{ Containers, InitContainers []map[string]any }
				}
			}
		}
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatalf("not YAML: %v", err)
		}
		for _, c := range append(o.Spec.Template.Spec.Containers, o.Spec.Template.Spec.InitContainers...) {
			all[o.Kind+"/"+c["name"].(string)] = c
		}
	}
	return all
}

func args(c map[string]any) string {
	b, _ := yaml.Marshal(c["args"])
	return string(b)
}

// Every render flag reaches the manifests (--adopt-cloud-provider-routes
// once did not).
func TestRenderFlagsReachTheManifests(t *testing.T) {
	cases := []struct {
		flags []string
		check func(out string, c map[string]map[string]any) bool
	}{
		{[]string{"--namespace", "ops", "--create-namespace"}, func(out string, _ map[string]map[string]any) bool {
			return strings.Contains(out, "  name: ops\n") && strings.Contains(out, "namespace: ops") && !strings.Contains(out, "t1route-system")
		}},
		{[]string{"--image", "registry.example/t1route:v9"}, func(_ string, c map[string]map[string]any) bool {
			return c["Deployment/controller"]["image"] == "registry.example/t1route:v9" && c["DaemonSet/agent"]["image"] == "registry.example/t1route-node:v9" &&
				c["DaemonSet/ip-forward"]["image"] == "registry.example/t1route-node:v9" && c["DaemonSet/ovs"]["image"] == "registry.example/t1route-node:v9"
		}},
		{[]string{"--ovs-image", "registry.example/ovs:3"}, func(_ string, c map[string]map[string]any) bool {
			return c["DaemonSet/ovs"]["image"] == "registry.example/ovs:3" && c["DaemonSet/agent"]["image"] == "registry.example/ovs:3" &&
				c["Deployment/controller"]["image"] != "registry.example/ovs:3"
		}},
		{[]string{"--controller-port", "9443"}, func(_ string, c map[string]map[string]any) bool {
			return strings.Contains(args(c["Deployment/controller"]), "--metrics-bind-address=:9443")
		}},
		{[]string{"--datapath-type", "netdev"}, func(_ string, c map[string]map[string]any) bool {
			return strings.Contains(args(c["DaemonSet/agent"]), "--datapath-type=netdev")
		}},
		{[]string{"--adopt-cloud-provider-routes"}, func(_ string, c map[string]map[string]any) bool {
			return strings.Contains(args(c["Deployment/controller"]), "--adopt-cloud-provider-routes")
		}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			base, stderr, err := run(configtest.ValidEnv(), "render", "--image", "r.example/t1route:v1")
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if tc.check(base, containers(t, base)) {
				t.Fatal("the check passes without the flag: it cannot tell")
			}
			args := append([]string{"render"}, tc.flags...)
			if !slices.Contains(tc.flags, "--image") {
				args = append(args, "--image", "r.example/t1route:v1")
			}
			out, stderr, err := run(configtest.ValidEnv(), args...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if !tc.check(out, containers(t, out)) {
				t.Fatalf("%v did not reach the manifests:\n%s", tc.flags, out)
			}
		})
	}
}

func TestRenderRejectsBadConfiguration(t *testing.T) {
	env := configtest.ValidEnv()
	env["CLUSTER_CIDR"] = "100.96.0.0/33"
	out, stderr, err := run(env, "render")
	if ee, ok := err.(exitError); !ok || ee.code != 2 || out != "" || !strings.Contains(stderr, "CLUSTER_CIDR") {
		t.Fatalf("err %v, stdout %q, stderr %q", err, out, stderr)
	}
	if _, stderr, err = run(configtest.ValidEnv(), "render", "--image", "r.example/t1route:v1", "--datapath-type", "dpdk"); err == nil || !strings.Contains(stderr, "--datapath-type") {
		t.Fatalf("bad datapath type: %v %s", err, stderr)
	}
	env = configtest.ValidEnv()
	env["NSXT_POD_ROUTING_ENABLED"] = "false"
	if _, stderr, err = run(env, "render"); err == nil || !strings.Contains(stderr, "NSXT_POD_ROUTING_ENABLED") {
		t.Fatalf("disabled: %v %s", err, stderr)
	}
}

// deploy/base is render's output for placeholder settings, exactly as
// `make manifests` runs it: regenerate it with `make manifests` when render
// changes.
func TestDeployBaseIsCurrent(t *testing.T) {
	env := map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "CLUSTER_CIDR": "100.96.0.0/11", "CLUSTER_NAME": "change-me",
		"NSXT_MANAGER_HOST": "nsx.example.com", "NSXT_ROUTER_PATH": "/infra/tier-1s/change-me", "NSXT_USERNAME": "CHANGE-ME", "NSXT_PASSWORD": "CHANGE-ME"}
	out, _, err := run(env, "render", "--image", "ghcr.io/t1route/t1route:change-me")
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

// render's own flags refuse what is wrong, naming the flag (exit 2): a
// namespace that is no DNS-1123 label, another namespace without saying
// whether render creates it, a :latest image, no image from a development
// build. A release's render defaults to its own image.
func TestRenderRefusesUnsafeOptions(t *testing.T) {
	img := []string{"--image", "r.example/t1route:v1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"--namespace", "Bad_NS", "--create-namespace"}, img...), `--namespace "Bad_NS"`},
		{append([]string{"--namespace", strings.Repeat("a", 70), "--create-namespace=false"}, img...), "no more than 63 characters"},
		{append([]string{"--namespace", "payments"}, img...), "--namespace payments: say whether render creates it (--create-namespace"},
		{append([]string{"--namespace", "kube-system"}, img...), "--create-namespace=false"},
		{[]string{"--image", "r.example/t1route:latest"}, "--image r.example/t1route:latest: no :latest"},
		{[]string{"--image", "r.example/t1route"}, "no :latest"},
	} {
		out, stderr, err := run(configtest.ValidEnv(), append([]string{"render"}, tc.args...)...)
		if ee, ok := err.(exitError); !ok || ee.code != 2 || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("render %v: %v, stdout %d bytes, stderr %q; want exit 2 and %q", tc.args, err, len(out), stderr, tc.want)
		}
	}
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "1.4.2"
	out, stderr, err := run(configtest.ValidEnv(), "render")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if c := containers(t, out); c["Deployment/controller"]["image"] != "ghcr.io/t1route/t1route:v1.4.2" || c["DaemonSet/agent"]["image"] != "ghcr.io/t1route/t1route-node:v1.4.2" {
		t.Errorf("release v1.4.2 renders %v and %v", c["Deployment/controller"]["image"], c["DaemonSet/agent"]["image"])
	}
}
