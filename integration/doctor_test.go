//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// doctor against nsxsim and the real apiserver: healthy, then each thing an
// operator gets wrong, each named with a fix and a non-zero exit.
func TestDoctor(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	if err := sim.AddTier1("t1-noadv", "TIER1_CONNECTED"); err != nil {
		t.Fatal(err)
	}
	// A kubeconfig acting as a user with no t1route permissions.
	kcBytes, _ := os.ReadFile(c.Kubeconfig)
	weak := filepath.Join(t.TempDir(), "weak-kubeconfig")
	os.WriteFile(weak, []byte(strings.Replace(string(kcBytes), "user: {client-certificate:", "user: {as: nobody, as-groups: [system:authenticated], client-certificate:", 1)), 0o600) //nolint:errcheck

	doctor := func(kubeconfig string, override ...string) (string, int) {
		env := append([]string{"NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11"}, simEnv(sim)...)
		env = append(env, override...) // later entries win in os/exec
		cmd := exec.Command(filepath.Join(bin, "t1route"), "doctor", "--kubeconfig", kubeconfig, "--timeout", "30s")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	out, code := doctor(c.Kubeconfig)
	for _, want := range []string{"PASS configuration", "PASS manager reachable", "PASS manager TLS: certificate verified", "PASS credentials: accepted",
		"PASS manager version: NSX 4.1.2", "PASS manager cluster: management cluster STABLE", "PASS Tier-1", "PASS route advertisement",
		"PASS service range: CLUSTER_CIDR [100.96.0.0/11] does not overlap [100.64.0.0/16 2001:db8:64::/112]", "PASS kubernetes", "PASS rbac", "0 failed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("healthy setup: no %q (exit %d):\n%s", want, code, out)
		}
	}
	if code != 0 {
		t.Fatalf("healthy setup exit %d:\n%s", code, out)
	}
	cases := []struct {
		name       string
		kubeconfig string
		env        []string
		want       string
	}{
		{"no static route advertisement", c.Kubeconfig, []string{"NSXT_ROUTER_PATH=/infra/tier-1s/t1-noadv"}, "FAIL route advertisement"},
		{"missing Tier-1", c.Kubeconfig, []string{"NSXT_ROUTER_PATH=/infra/tier-1s/nope"}, "FAIL Tier-1: /infra/tier-1s/nope does not exist"},
		{"wrong password", c.Kubeconfig, []string{"NSXT_PASSWORD=wrong"}, "FAIL credentials"},
		{"CA not pinned", c.Kubeconfig, []string{"NSXT_ROOT_CA_DATA_B64="}, "FAIL manager TLS"},
		{"unreachable manager", c.Kubeconfig, []string{"NSXT_MANAGER_HOST=127.0.0.1:1"}, "FAIL manager reachable"},
		{"overlapping service range", c.Kubeconfig, []string{"CLUSTER_CIDR=100.64.0.0/12"}, "FAIL service range: CLUSTER_CIDR 100.64.0.0/12 overlaps the service range 100.64.0.0/16"},
		{"insufficient RBAC", weak, nil, "FAIL rbac: not allowed: get nodes; list nodes"},
		{"bad configuration", c.Kubeconfig, []string{"CLUSTER_CIDR=banana"}, "FAIL configuration: CLUSTER_CIDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := doctor(tc.kubeconfig, tc.env...)
			if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "fix:") {
				t.Fatalf("exit %d, want 1 with %q and a fix:\n%s", code, tc.want, out)
			}
			_, pass := sim.User()
			if strings.Contains(out, pass) {
				t.Fatal("doctor printed the password")
			}
		})
	}
	sim.SetClusterStatus("DEGRADED")
	if out, code := doctor(c.Kubeconfig); code != 0 || !strings.Contains(out, "WARN manager cluster: management cluster is DEGRADED") {
		t.Fatalf("degraded cluster: exit %d\n%s", code, out)
	}
}
