//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
)

const deployNS = "t1route-system"

// renderFor runs `t1route render` with an environment and returns its objects.
func renderFor(t *testing.T, bin string, env []string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "t1route"), "render")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("render printed invalid YAML: %v", err)
		}
		if u.GetKind() != "" {
			objs = append(objs, u)
		}
	}
	return objs
}

// applier applies objects with server-side apply, as kubectl apply --server-side does.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, c *Cluster) *applier {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memCache{dc})}
}

func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	body, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "t1route-test", Force: ptr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if u.GetNamespace() != "" {
		ri = a.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
	return err
}

func ptr[T any](v T) *T { return &v }

// The rendered manifests pass server-side dry-run apply for each way to
// authenticate; the RBAC grants the controller exactly what it needs (and no
// Secrets but its one); the controller converges under exactly that RBAC.
func TestRenderedManifestsOnRealAPIServer(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	ctx := context.Background()
	a := newApplier(t, c)
	user, pass := sim.User()
	base := []string{"NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11", "CLUSTER_NAME=deploy-test",
		"NSXT_MANAGER_HOST=" + sim.Addr(), "NSXT_ROUTER_PATH=" + tier1Path}
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
	var secretModeObjs []*unstructured.Unstructured
	for name, env := range modes {
		objs := renderFor(t, bin, append(append([]string{}, base...), env...))
		// The namespace must exist for a dry run of what lives in it.
		if err := a.apply(ctx, objs[0], false); err != nil {
			t.Fatalf("%s: apply namespace: %v", name, err)
		}
		for _, o := range objs[1:] {
			if err := a.apply(ctx, o, true); err != nil {
				t.Fatalf("%s: server-side dry-run apply of %s %s: %v", name, o.GetKind(), o.GetName(), err)
			}
		}
		if name == "kubernetes secret" {
			secretModeObjs = objs
		}
	}
	// Install for real (Secret authentication: the strictest RBAC).
	for _, o := range secretModeObjs {
		if err := a.apply(ctx, o, false); err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
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
		kube := kubernetes.NewForConfigOrDie(asSA(sa))
		for _, ch := range list {
			// What `kubectl auth can-i --as=system:serviceaccount:...` asks.
			r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: ch.verb, Group: ch.group, Resource: ch.resource, Subresource: ch.sub, Namespace: ch.ns, Name: ch.name}}},
				metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != ch.allowed {
				t.Errorf("%s can %s %s/%s (ns %q, name %q): %v, want %v", sa, ch.verb, ch.resource, ch.sub, ch.ns, ch.name, r.Status.Allowed, ch.allowed)
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
	creds := &auth.SecretCredentials{Client: saKube, Namespace: deployNS, Name: "nsx-credentials", Logger: zap.NewNop()}
	go creds.Run(runCtx) //nolint:errcheck
	client, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool()},
		Auth: &auth.Session{BaseURL: sim.URL(), Credentials: creds}})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := podroute.ClusterUID(ctx, saKube)
	if err != nil {
		t.Fatalf("the controller's ServiceAccount cannot read its cluster identity: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- podroute.Run(runCtx, saKube, client, podroute.RunOptions{Config: podroute.Config{
			Identity: podroute.Identity{UID: uid, Name: "deploy-test"}, Tier1Path: tier1Path,
			ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}},
			LeaderElection: &podroute.LeaderElection{Namespace: deployNS, Name: "t1route-controller", Identity: "test",
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
			Log: zap.NewNop()})
	}()
	eventually(t, 30*time.Second, "routes and NetworkUnavailable=False under the rendered RBAC", func() (bool, string) {
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
	lease, err := c.Client.CoordinationV1().Leases(deployNS).Get(ctx, "t1route-controller", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "test" {
		t.Fatalf("lease: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
}

// memCache is a discovery client without caching, enough for a RESTMapper.
type memCache struct{ discovery.DiscoveryInterface }

func (memCache) Fresh() bool { return true }
func (memCache) Invalidate() {}
