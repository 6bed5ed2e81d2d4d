//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

const deployNS = "t1route-system"

// renderImage is the image the integration tests render (no pod runs here).
const renderImage = "ghcr.io/t1route/t1route:test"

// renderYAML runs `t1route render --image renderImage` with an environment
// (and extra flags) and returns its YAML.
func renderYAML(t *testing.T, bin string, env []string, flags ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"render", "--image", renderImage}, flags...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// The rendered manifests pass server-side dry-run apply for each way to
// authenticate; the RBAC grants the controller exactly what it needs (and no
// Secrets but its one); the controller converges under exactly that RBAC.
func TestRenderedManifestsOnRealAPIServer(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	ctx := context.Background()
	user, pass := sim.User()
	base := []string{"NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11", "CLUSTER_NAME=deploy-test",
		"NSXT_MANAGER_HOST=" + sim.Addr(), "NSXT_ROUTER_PATH=" + tier1Path.String(), "NSXT_MANAGEMENT_CIDR=203.0.113.0/28"}
	cert, key, err := sim.IssueClientCert("t1route")
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string][]string{
		"password":           {"NSXT_USERNAME=" + user, "NSXT_PASSWORD=" + pass},
		"client certificate": {"NSXT_CLIENT_CERT_DATA=" + string(cert), "NSXT_CLIENT_CERT_KEY_DATA=" + string(key)},
		"vmc token":          {"NSXT_VMC_AUTH_HOST=" + sim.Addr(), "NSXT_VMC_ACCESS_TOKEN=some-api-token"},
		"kubernetes secret":  {"NSXT_SECRET_NAMESPACE=" + deployNS, "NSXT_SECRET_NAME=nsx-credentials"},
	}
	// As deploy/README.md says: on a fresh cluster the dry run fails (it
	// creates no namespace), and passes once the namespace exists.
	fresh := renderYAML(t, bin, append(append([]string{}, base...), modes["password"]...))
	if out, err := c.Kubectl(t, fresh, "apply", "--server-side", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, `namespaces "`+deployNS+`" not found`) {
		t.Fatalf("a dry run on a fresh cluster: want the README's namespace error, got %v\n%s", err, out)
	}
	if out, err := c.Kubectl(t, "", "create", "namespace", deployNS); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var secretMode string
	for name, env := range modes {
		manifests := renderYAML(t, bin, append(append([]string{}, base...), env...))
		out, err := c.Kubectl(t, manifests, "apply", "--server-side", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("%s: kubectl apply --server-side --dry-run=server: %v\n%s", name, err, out)
		}
		if n, want := strings.Count(out, "(server dry run)"), strings.Count(manifests, "\n---\n"); n != want {
			t.Fatalf("%s: %d objects dry-run applied, %d rendered:\n%s", name, n, want, out)
		}
		if name == "kubernetes secret" {
			secretMode = manifests
		}
	}
	// Install for real (Secret authentication: the strictest RBAC), exactly as the README says:
	// one apply, with the management guard configured (its policies are the controller's to create,
	// so nothing in the stream waits for the CRD it carries).
	if out, err := c.Kubectl(t, secretMode, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply -f -: %v\n%s", err, out)
	}

	asSA := func(sa string) *rest.Config {
		rc := rest.CopyConfig(c.Config)
		rc.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + deployNS + ":" + sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + deployNS, "system:authenticated"}}
		return rc
	}
	type can struct {
		verb, group, resource, sub, ns, name string
		allowed                              bool
	}
	checks := map[string][]can{
		"t1route-controller": {
			{"get", "", "nodes", "", "", "", true}, {"list", "", "nodes", "", "", "", true}, {"watch", "", "nodes", "", "", "", true},
			{"patch", "", "nodes", "status", "", "", true}, {"create", "", "events", "", "default", "", true}, {"patch", "", "events", "", "kube-system", "", true},
			{"get", "", "namespaces", "", "", "kube-system", true},
			{"get", "coordination.k8s.io", "leases", "", deployNS, "", true}, {"create", "coordination.k8s.io", "leases", "", deployNS, "", true},
			{"update", "coordination.k8s.io", "leases", "", deployNS, "", true},
			{"get", "", "secrets", "", deployNS, "nsx-credentials", true}, {"watch", "", "secrets", "", deployNS, "nsx-credentials", true},
			// The management guard's policies by name; no other ClusterNetworkPolicy, and no list.
			{"patch", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "t1route-management-guard-deny", true},
			{"delete", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "t1route-management-guard-allow-16", true},
			{"patch", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "", false}, {"delete", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "", false},
			{"list", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "", false},
			{"delete", "policy.networking.k8s.io", "clusternetworkpolicies", "", "", "team-a-policy", false},
			{"update", "networking.k8s.io", "networkpolicies", "", "default", "", false},
			// Denied: Secrets cluster-wide or by list, other Secrets, writes to nodes, leases elsewhere.
			{"list", "", "secrets", "", "", "", false}, {"list", "", "secrets", "", deployNS, "", false}, {"get", "", "secrets", "", deployNS, "other", false},
			{"get", "", "secrets", "", "kube-system", "nsx-credentials", false}, {"delete", "", "nodes", "", "", "", false}, {"update", "", "nodes", "", "", "", false},
			{"create", "coordination.k8s.io", "leases", "", "kube-system", "", false}, {"get", "", "namespaces", "", "", "default", false},
		},
		"t1route-agent": {
			{"get", "", "nodes", "", "", "", true},
			{"patch", "", "nodes", "", "", "", false}, {"list", "", "secrets", "", "", "", false}, {"get", "", "secrets", "", deployNS, "nsx-credentials", false},
		},
	}
	for sa, list := range checks {
		for _, ch := range list {
			resource := ch.resource
			if ch.group != "" {
				resource += "." + ch.group
			}
			if ch.name != "" {
				resource += "/" + ch.name
			}
			args := []string{"auth", "can-i", "--as=system:serviceaccount:" + deployNS + ":" + sa, ch.verb, resource}
			if ch.sub != "" {
				args = append(args, "--subresource="+ch.sub)
			}
			if ch.ns != "" {
				args = append(args, "-n", ch.ns)
			} else {
				args = append(args, "--all-namespaces")
			}
			out, err := c.Kubectl(t, "", args...)
			if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
				t.Fatal(err)
			}
			answer := strings.TrimSpace(out)
			if answer != "yes" && answer != "no" {
				t.Fatalf("kubectl %s: %q is neither yes nor no", strings.Join(args, " "), answer)
			}
			if got := answer == "yes"; got != ch.allowed {
				t.Errorf("kubectl %s: %q, want allowed=%v", strings.Join(args, " "), strings.TrimSpace(out), ch.allowed)
			}
		}
	}

	// The controller, as its ServiceAccount: Secret credentials, leader election, routes, conditions, events.
	if _, err := c.Client.CoreV1().Secrets(deployNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nsx-credentials"},
		StringData: map[string]string{"username": user, "password": pass}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		createNode(t, c, nodeName(i), podCIDR(i), nodeIP(i))
	}
	saKube := kubernetes.NewForConfigOrDie(asSA("t1route-controller"))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Connected as the controller's ServiceAccount, exactly as the rendered Deployment configures it.
	settings := SimSettings(sim, tier1)
	delete(settings, "NSXT_USERNAME")
	delete(settings, "NSXT_PASSWORD")
	settings["NSXT_SECRET_NAMESPACE"], settings["NSXT_SECRET_NAME"] = deployNS, "nsx-credentials"
	_, client := Connect(t, settings, saKube, connect.Options{})
	uid, err := podroute.ClusterUID(ctx, saKube)
	if err != nil {
		t.Fatalf("the controller's ServiceAccount cannot read its cluster identity: %v", err)
	}
	keepGuard, err := guard.ForController(asSA("t1route-controller"), render.GuardOwner(deployNS), config.GuardSettings{CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")},
		Allowed: config.DefaultGuardSelectors()}, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- podroute.Run(runCtx, saKube, client, podroute.RunOptions{WhileLeading: keepGuard, Config: podroute.Config{
			Identity: podroute.Identity{UID: uid, Name: "deploy-test"}, Router: tier1Path,
			ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}},
			LeaderElection: &daemon.LeaderElection{Namespace: deployNS, Name: "t1route-controller", Identity: "test",
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
			Log: zap.NewNop()})
	}()
	Eventually(t, 30*time.Second, "routes and NetworkUnavailable=False under the rendered RBAC", func() (bool, string) {
		if n := len(sim.Routes(tier1)); n != 3 {
			return false, fmt.Sprintf("%d routes", n)
		}
		nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes.Items {
			if cond := condition(n); cond == nil || cond.Status != corev1.ConditionFalse {
				return false, "no condition on " + n.Name
			}
		}
		return true, ""
	})
	dyn := dynamic.NewForConfigOrDie(c.Config)
	Eventually(t, 30*time.Second, "the management guard's policies, kept by the controller's leader", func() (bool, string) {
		l, err := dyn.Resource(cnp.Resource).List(ctx, metav1.ListOptions{LabelSelector: guard.Selector.String()})
		if err != nil {
			return false, err.Error()
		}
		if n, want := len(l.Items), len(config.DefaultGuardSelectors())+1; n != want {
			return false, fmt.Sprintf("%d guard policies, want %d", n, want)
		}
		return true, ""
	})
	lease, err := c.Client.CoordinationV1().Leases(deployNS).Get(ctx, "t1route-controller", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "test" {
		t.Fatalf("lease: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
}

// deploy/base and the example overlay build with kubectl's kustomize and
// pass a server-side dry run; the overlay really replaces the settings.
func TestKustomizeBaseAndOverlay(t *testing.T) {
	c := StartCluster(t)
	_, file, _, _ := runtime.Caller(0)
	deploy := filepath.Join(filepath.Dir(file), "..", "deploy")
	tmp := t.TempDir()
	if out, err := exec.Command("cp", "-r", deploy, tmp).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	overlay := filepath.Join(tmp, "deploy", "overlays", "example")
	if err := os.WriteFile(filepath.Join(overlay, "nsx-credentials.env"), []byte("NSXT_USERNAME=t1route\nNSXT_PASSWORD=overlay-Secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := c.Kubectl(t, "", "kustomize", filepath.Join(tmp, "deploy", "base"))
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/base: %v\n%s", err, base)
	}
	committed, _ := os.ReadFile(filepath.Join(deploy, "base", "t1route.yaml"))
	if got, want := strings.Count(base, "\nkind: ")+boolInt(strings.HasPrefix(base, "kind: ")), strings.Count(string(committed), "\nkind: "); got != want {
		t.Fatalf("the base builds %d objects, t1route.yaml has %d", got, want)
	}
	built, err := c.Kubectl(t, "", "kustomize", overlay)
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/overlays/example: %v\n%s", err, built)
	}
	for _, want := range []string{"CLUSTER_NAME: prod-east-1", "NSXT_ROUTER_PATH: /infra/tier-1s/t1-routable"} {
		if !strings.Contains(built, want) {
			t.Fatalf("the overlay did not set %q:\n%s", want, built)
		}
	}
	if strings.Contains(built, "change-me") || strings.Contains(built, "CHANGE-ME") {
		t.Fatalf("placeholders survive the overlay:\n%s", built)
	}
	if out, err := c.Kubectl(t, "", "create", "namespace", deployNS); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := c.Kubectl(t, built, "apply", "--server-side", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("dry run of the overlay: %v\n%s", err, out)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The uninstall deploy/README.md gives removes t1route's objects and keeps
// the CRDs (shared by every install; deleting the upstream one would delete
// every ClusterNetworkPolicy, the operator's own too); the namespace goes
// because it carries render's ownership label.
func TestUninstallKeepsTheUpstreamCRD(t *testing.T) {
	c := StartCluster(t)
	_, file, _, _ := runtime.Caller(0)
	manifests, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "deploy", "base", "t1route.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Kubectl(t, string(manifests), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	uninstall(t, c, string(manifests), deployNS)
	for _, crd := range []string{"clusternetworkpolicies.policy.networking.k8s.io", "t1routeagentinfos.t1route.io"} {
		if out, err := c.Kubectl(t, "", "get", "crd", crd); err != nil {
			t.Fatalf("the CRD %s went: %v\n%s", crd, err, out)
		}
	}
	for _, what := range []string{"namespace/" + deployNS, "clusterrole/t1route-controller", "validatingadmissionpolicy/t1route-agent-own-node"} {
		if !goneOrGoing(t, c, what) {
			t.Errorf("%s left after the uninstall", what)
		}
	}
}

// uninstall runs deploy/README.md's uninstall of the install in namespace
// whose render output is manifests.
func uninstall(t *testing.T, c *Cluster, manifests, namespace string) {
	t.Helper()
	// --wait=false: this API server runs no namespace controller to finish the namespace's deletion.
	for _, args := range [][]string{
		{"delete", "-f", "-", "-l", "app.kubernetes.io/instance=" + namespace, "--wait=false"},
		{"delete", "clusternetworkpolicies", "-l", "app.kubernetes.io/component=management-guard,app.kubernetes.io/instance=" + namespace},
		{"delete", "namespace", "-l", "t1route.io/created-by=t1route-render,kubernetes.io/metadata.name=" + namespace, "--wait=false"},
	} {
		stdin := ""
		if args[1] == "-f" {
			stdin = manifests
		}
		if out, err := c.Kubectl(t, stdin, args...); err != nil {
			t.Fatalf("the README's uninstall, kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// goneOrGoing reports whether what (kind/name) is gone, or going (a
// deletion timestamp: finalizers still to run).
func goneOrGoing(t *testing.T, c *Cluster, what string) bool {
	t.Helper()
	out, err := c.Kubectl(t, "", "get", what, "-o", "jsonpath={.metadata.deletionTimestamp}")
	return err != nil || strings.TrimSpace(out) != ""
}
