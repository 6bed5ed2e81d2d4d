//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// The deploy side of the second security round, end to end on a real
// kube-apiserver: least privilege of the rendered RBAC (checked with the
// ServiceAccounts' real tokens), installs kept apart and to their
// namespace, hardened pods, and the controller's /metrics behind the API
// server's authentication and authorization.

// securityEnv is a complete configuration with the management guard.
var securityEnv = []string{"NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11", "CLUSTER_NAME=security-test",
	"NSXT_MANAGER_HOST=nsx.example.com", "NSXT_ROUTER_PATH=/infra/tier-1s/t1", "NSXT_USERNAME=admin", "NSXT_PASSWORD=Not-used-1",
	"NSXT_MANAGEMENT_CIDR=203.0.113.0/28"}

// saToken is a real token of ServiceAccount ns/sa (TokenRequest), as its pod gets.
func saToken(t *testing.T, c *Cluster, ns, sa string) string {
	t.Helper()
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// tokenConfig talks to c with token alone.
func tokenConfig(c *Cluster, token string) *rest.Config {
	return &rest.Config{Host: c.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData}}
}

// apply applies manifests as the cluster's admin, and waits for the CRDs.
func apply(t *testing.T, c *Cluster, manifests string) {
	t.Helper()
	if out, err := c.Kubectl(t, manifests, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	if out, err := c.Kubectl(t, "", "wait", "--for=condition=Established", "--timeout=30s", "crd/clusternetworkpolicies.policy.networking.k8s.io"); err != nil {
		t.Fatalf("CRD: %v\n%s", err, out)
	}
}

// otherPolicy is another team's ClusterNetworkPolicy.
func otherPolicy(name string, priority int32, action cnp.Action) *unstructured.Unstructured {
	u, err := cnp.ToUnstructured(&cnp.ClusterNetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: cnp.GroupVersion.String(), Kind: cnp.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cnp.Spec{Tier: cnp.AdminTier, Priority: priority, Subject: cnp.Subject{Namespaces: &metav1.LabelSelector{}},
			Egress: []cnp.EgressRule{{Action: action, To: []cnp.EgressPeer{{Networks: []string{"203.0.113.0/28"}}}}}}})
	if err != nil {
		panic(err)
	}
	return u
}

// With the controller's own token, as the rendered RBAC grants it: another
// team's ClusterNetworkPolicy cannot be read, changed or deleted, nor a new
// one created (a priority-0 Accept above the guard); the guard is still
// kept, including a policy deleted behind its back and one a smaller
// configuration no longer has. Without a guard configured the controller
// may touch no ClusterNetworkPolicy at all.
func TestSecurityControllerWritesOnlyTheGuardsPolicies(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	ctx := context.Background()
	apply(t, c, renderYAML(t, bin, securityEnv))
	admin := dynamic.NewForConfigOrDie(c.Config).Resource(cnp.Resource)
	if _, err := admin.Create(ctx, otherPolicy("team-a-deny-mgmt", 10, cnp.Deny), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := tokenConfig(c, saToken(t, c, deployNS, render.ControllerName))
	asController := dynamic.NewForConfigOrDie(rc).Resource(cnp.Resource)
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("the controller's token could %s: %v", what, err)
		}
	}
	_, err := asController.Create(ctx, otherPolicy("steal-mgmt", 0, cnp.Accept), metav1.CreateOptions{})
	forbidden("create another ClusterNetworkPolicy", err)
	_, err = asController.Apply(ctx, "steal-mgmt", otherPolicy("steal-mgmt", 0, cnp.Accept), metav1.ApplyOptions{FieldManager: "x", Force: true})
	forbidden("apply another ClusterNetworkPolicy", err)
	_, err = asController.Patch(ctx, "team-a-deny-mgmt", types.MergePatchType, []byte(`{"spec":{"priority":999}}`), metav1.PatchOptions{})
	forbidden("patch another team's ClusterNetworkPolicy", err)
	forbidden("delete another team's ClusterNetworkPolicy", asController.Delete(ctx, "team-a-deny-mgmt", metav1.DeleteOptions{}))
	_, err = asController.Get(ctx, "team-a-deny-mgmt", metav1.GetOptions{})
	forbidden("read another team's ClusterNetworkPolicy", err)
	_, err = asController.List(ctx, metav1.ListOptions{})
	forbidden("list ClusterNetworkPolicies", err)
	if got, err := admin.Get(ctx, "team-a-deny-mgmt", metav1.GetOptions{}); err != nil || got.GetGeneration() != 1 {
		t.Fatalf("team-a's policy changed: %v", err)
	}

	// The guard, kept with that token (as the controller's leader runs it).
	mgmt := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}
	extra, _ := config.ParseGuardSelector("tools:app=backup")
	keeper := func(allowed ...config.GuardSelector) *guard.Keeper {
		k, err := guard.NewFor(dynamic.NewForConfigOrDie(rc), render.GuardOwner(deployNS), mgmt, append(config.DefaultGuardSelectors(), allowed...), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sync := func(what string, k *guard.Keeper, applied, deleted []string) {
		t.Helper()
		res, err := k.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		slices.Sort(res.Applied)
		slices.Sort(res.Deleted)
		if !slices.Equal(res.Applied, applied) || !slices.Equal(res.Deleted, deleted) {
			t.Fatalf("%s: applied %v deleted %v, want %v and %v", what, res.Applied, res.Deleted, applied, deleted)
		}
	}
	owner := render.GuardOwner(deployNS)
	sync("first", keeper(extra), []string{owner.AllowName(1), owner.AllowName(2), owner.AllowName(3), owner.DenyName()}, nil)
	sync("again", keeper(extra), nil, nil)
	if err := admin.Delete(ctx, owner.DenyName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sync("deny deleted", keeper(extra), []string{owner.DenyName()}, nil)
	sync("one selector fewer", keeper(), nil, []string{owner.AllowName(3)})
	deny, err := admin.Get(ctx, owner.DenyName(), metav1.GetOptions{})
	if err != nil || deny.GetLabels()[guard.InstanceLabel] != deployNS {
		t.Fatalf("the guard's deny policy: %v, labels %v", err, deny.GetLabels())
	}

	// Without a guard: the ClusterRole grants nothing on ClusterNetworkPolicies.
	noGuard := slices.DeleteFunc(slices.Clone(securityEnv), func(s string) bool { return strings.HasPrefix(s, "NSXT_MANAGEMENT_CIDR=") })
	apply(t, c, renderYAML(t, bin, noGuard))
	Eventually(t, 10*time.Second, "the guard's names no longer granted", func() (bool, string) {
		_, err := asController.Get(ctx, owner.DenyName(), metav1.GetOptions{})
		return apierrors.IsForbidden(err), fmt.Sprint(err)
	})
	forbidden("delete the guard's policy without a guard configured", asController.Delete(ctx, owner.DenyName(), metav1.DeleteOptions{}))
	_, err = asController.Create(ctx, otherPolicy("steal-mgmt", 0, cnp.Accept), metav1.CreateOptions{})
	forbidden("create a ClusterNetworkPolicy without a guard configured", err)
}

// render refuses namespaces that are not DNS-1123 labels and a namespace
// it is not told it may create, each naming the flag (exit 2). Installed
// with --create-namespace=false into an existing namespace (here one that
// enforces the baseline Pod Security level), nothing of the namespace
// changes, and the documented uninstall keeps it.
func TestSecurityRenderKeepsToItsNamespace(t *testing.T) {
	bin := BuildBinaries(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "Bad_NS", "--create-namespace"}, `--namespace "Bad_NS"`},
		{[]string{"--namespace", strings.Repeat("a", 70), "--create-namespace"}, "--namespace"},
		{[]string{"--namespace", "apps"}, "--create-namespace=false"},
	} {
		cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"render", "--image", renderImage}, tc.args...)...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, securityEnv...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("render %v: %v, %d bytes out, stderr %q; want exit 2 naming %q", tc.args, err, stdout.Len(), stderr.String(), tc.want)
		}
	}

	c := StartCluster(t)
	ctx := context.Background()
	baseline := map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "team": "apps"}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: baseline}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manifests := renderYAML(t, bin, securityEnv, "--namespace", "apps", "--create-namespace=false")
	if strings.Contains(manifests, "kind: Namespace\n") {
		t.Fatal("a Namespace rendered with --create-namespace=false")
	}
	apply(t, c, manifests)
	labelsOf := func() map[string]string {
		ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "apps", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.DeletionTimestamp != nil {
			t.Fatal("namespace apps is being deleted")
		}
		delete(ns.Labels, "kubernetes.io/metadata.name")
		return ns.Labels
	}
	if l := labelsOf(); fmt.Sprint(l) != fmt.Sprint(baseline) {
		t.Fatalf("install changed the namespace's labels: %v, were %v", l, baseline)
	}
	if _, err := c.Client.AppsV1().DaemonSets("apps").Get(ctx, render.AgentName, metav1.GetOptions{}); err != nil {
		t.Fatalf("not installed into apps: %v", err)
	}
	uninstall(t, c, manifests, "apps")
	if l := labelsOf(); fmt.Sprint(l) != fmt.Sprint(baseline) {
		t.Fatalf("after the uninstall the namespace's labels are %v", l)
	}
	if _, err := c.Client.AppsV1().DaemonSets("apps").Get(ctx, render.AgentName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the uninstall left the agent: %v", err)
	}
}

// Two installs in one cluster (t1route-system and team-b, both with the
// guard, each guard kept by its controller's token): uninstalling team-b
// as deploy/README.md says leaves every object of the other install, its
// guard policies and its permissions, and the shared CRDs.
func TestSecurityTwoInstallsUninstallOne(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	ctx := context.Background()
	a := renderYAML(t, bin, securityEnv)
	b := renderYAML(t, bin, securityEnv, "--namespace", "team-b", "--create-namespace")
	apply(t, c, a)
	apply(t, c, b)
	admin := dynamic.NewForConfigOrDie(c.Config)
	mgmt := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}
	for _, ns := range []string{deployNS, "team-b"} {
		k, err := guard.NewFor(dynamic.NewForConfigOrDie(tokenConfig(c, saToken(t, c, ns, render.ControllerName))), render.GuardOwner(ns), mgmt,
			config.DefaultGuardSelectors(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sync(ctx); err != nil {
			t.Fatalf("%s's guard: %v", ns, err)
		}
	}
	guards := func(ns string) int {
		l, err := admin.Resource(cnp.Resource).List(ctx, metav1.ListOptions{LabelSelector: guard.Selector.String() + "," + guard.InstanceLabel + "=" + ns})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	want := len(config.DefaultGuardSelectors()) + 1
	if guards(deployNS) != want || guards("team-b") != want {
		t.Fatalf("guard policies: %d and %d, want %d each", guards(deployNS), guards("team-b"), want)
	}

	uninstall(t, c, b, "team-b")

	// Every object install A rendered is there, not being deleted.
	out, err := c.Kubectl(t, a, "get", "-f", "-", "--no-headers", "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,DELETING:.metadata.deletionTimestamp")
	if err != nil {
		t.Fatalf("install A's objects after uninstalling team-b: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n := strings.Count(a, "\n---\n"); len(lines) != n {
		t.Errorf("%d of install A's %d objects left:\n%s", len(lines), n, out)
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || f[2] != "<none>" {
			t.Errorf("install A's object being deleted: %s", l)
		}
	}
	if guards(deployNS) != want || guards("team-b") != 0 {
		t.Errorf("guard policies after uninstalling team-b: %d and %d, want %d and 0", guards(deployNS), guards("team-b"), want)
	}
	// Install A's controller still may do its work; team-b's objects are gone.
	for _, args := range [][]string{{"get", "nodes"}, {"patch", "clusternetworkpolicies.policy.networking.k8s.io/" + render.GuardOwner(deployNS).DenyName()},
		{"create", "tokenreviews.authentication.k8s.io"}} {
		out, _ := c.Kubectl(t, "", append([]string{"auth", "can-i", "--all-namespaces", "--as=system:serviceaccount:" + deployNS + ":" + render.ControllerName}, args...)...)
		if strings.TrimSpace(out) != "yes" {
			t.Errorf("install A's controller may not %v after uninstalling team-b: %s", args, out)
		}
	}
	for _, what := range []string{"clusterrole/t1route-controller-team-b", "clusterrolebinding/t1route-agent-team-b",
		"validatingadmissionpolicy/t1route-agent-own-node-team-b", "namespace/team-b"} {
		if !goneOrGoing(t, c, what) {
			t.Errorf("%s left after uninstalling team-b", what)
		}
	}
}

// The rendered workloads pass the API server's validation with their
// hardening intact: every container under the runtime's default seccomp
// profile with a read-only root filesystem, every writable path a volume,
// and the images the ones asked for (a digest as given).
func TestSecurityRenderedPodsAreHardened(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	digest := "@sha256:" + strings.Repeat("ab", 32)
	nodeDigest := "@sha256:" + strings.Repeat("cd", 32)
	manifests := renderYAML(t, bin, securityEnv, "--image", "r.example/t1route:v1"+digest, "--ovs-image", "r.example/t1route-node:v1"+nodeDigest,
		"--datapath-type", "netdev")
	apply(t, c, manifests)
	ctx := context.Background()
	ds, err := c.Client.AppsV1().DaemonSets(deployNS).Get(ctx, render.AgentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := c.Client.AppsV1().Deployments(deployNS).Get(ctx, render.ControllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []corev1.PodSpec{ds.Spec.Template.Spec, dep.Spec.Template.Spec} {
		if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("a pod without the RuntimeDefault seccomp profile: %+v", spec.SecurityContext)
		}
		for _, ctr := range append(spec.InitContainers, spec.Containers...) {
			sc := ctr.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: root filesystem writable", ctr.Name)
				continue
			}
			if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp %s", ctr.Name, sc.SeccompProfile.Type)
			}
			privileged := sc.Privileged != nil && *sc.Privileged
			if !privileged && (sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
				t.Errorf("%s: privilege escalation allowed", ctr.Name)
			}
			if strings.HasSuffix(ctr.Image, ":latest") || !strings.Contains(ctr.Image, "@sha256:") {
				t.Errorf("%s runs %s", ctr.Name, ctr.Image)
			}
		}
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "r.example/t1route:v1"+digest {
		t.Errorf("controller image %s", img)
	}
}

// The controller's /metrics, on every node interface (host network), is
// HTTPS and answers only a token the API server authenticates and
// authorizes for it: none, a bad one, or one of a ServiceAccount without
// t1route-metrics-reader is refused; a ServiceAccount bound to it reads the
// metrics; the kubelet's probes (/healthz, /readyz) need no token. The
// controller checks with its own rendered RBAC (its token).
func TestSecurityControllerMetricsNeedAnAuthorizedToken(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	ctx := context.Background()
	apply(t, c, renderYAML(t, bin, securityEnv))
	kubeconfig := filepath.Join(t.TempDir(), "controller.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: controller, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: controller}}]
current-context: test
`, c.Config.Host, b64(c.Config.CAData), saToken(t, c, deployNS, render.ControllerName))), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logs := &strings.Builder{}
	cmd := exec.Command(filepath.Join(bin, "t1route"), "controller", "--kubeconfig", kubeconfig, "--metrics-bind-address", addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "NSXT_POD_ROUTING_ENABLED=false"}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
		if t.Failed() {
			t.Logf("controller logs:\n%s", logs)
		}
	})
	// A prober that does not verify the certificate, as the kubelet's.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	Eventually(t, 30*time.Second, "the controller serving", func() (bool, string) {
		code, body := get("/healthz", "")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if code, _ := get("/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz without a token: %d", code)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("/metrics over plain HTTP")
	}
	for _, sa := range []string{"prometheus", "nosy"} {
		if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-t1route"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "default"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: render.MetricsReaderName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token the API server rejects", "not-a-token", http.StatusUnauthorized},
		{"a ServiceAccount without t1route-metrics-reader", saToken(t, c, "default", "nosy"), http.StatusForbidden},
		{"a ServiceAccount bound to t1route-metrics-reader", saToken(t, c, "default", "prometheus"), http.StatusOK},
	} {
		code, body := get("/metrics", tc.token)
		if code != tc.want {
			t.Errorf("%s: /metrics answered %d, want %d: %.200s", tc.name, code, tc.want, body)
		}
		if code == http.StatusOK && !strings.Contains(body, "go_goroutines") {
			t.Errorf("%s: no metrics in %.200s", tc.name, body)
		}
		if tc.token != "" && strings.Contains(logs.String(), tc.token) {
			t.Errorf("%s: the token is in the controller's logs", tc.name)
		}
	}
}
