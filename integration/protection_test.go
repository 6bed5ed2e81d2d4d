//go:build integration

package integration

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/gc"
)

// principalSettings are sim's settings for a client authenticating only
// with a client certificate of the principal identity name (as t1route in
// certificate mode, or the vSphere cloud provider).
func principalSettings(t *testing.T, sim *nsxsim.Simulator, name string) map[string]string {
	t.Helper()
	certPEM, keyPEM, err := sim.IssueClientCert(name)
	if err != nil {
		t.Fatal(err)
	}
	s := maps.Clone(SimSettings(sim, tier1))
	delete(s, "NSXT_USERNAME")
	delete(s, "NSXT_PASSWORD")
	s["NSXT_CLIENT_CERT_DATA"], s["NSXT_CLIENT_CERT_KEY_DATA"] = string(certPEM), string(keyPEM)
	return s
}

func principalClient(t *testing.T, sim *nsxsim.Simulator, name string) *nsx.Client {
	_, c := Connect(t, principalSettings(t, sim, name), nil, connect.Options{})
	return c
}

// NSX protects what a protected principal identity creates. The controller
// on such an identity (client certificate) makes its routes; gc and the
// cleanup controller on the enterprise admin's password delete them with
// X-Allow-Overwrite, and without it refuse naming the creator and the fix.
func TestProtectedRoutesGCAndCleanup(t *testing.T) {
	const pi = "t1route-controller"
	e := newEnv(t, nsxsim.Options{Tier1s: []string{tier1}, PrincipalIdentities: []string{pi, "wl-1-controller"}})
	admin := e.nsx
	e.nsx = principalClient(t, e.sim, pi)
	for i := range 3 {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
	}
	ctrl := e.startController("a", false, time.Minute)
	Eventually(t, 20*time.Second, "the controller's routes", func() (bool, string) { return len(e.ours()) == 3, fmt.Sprint(routeIDs(e.sim)) })
	ctrl.stop() // the cluster is gone; its routes stay behind

	// The admin cannot delete them without the override (nor can gc when told not to use it).
	ids := make([]string, 0, 3)
	for _, r := range e.ours() {
		ids = append(ids, r.ID)
	}
	if err := admin.Apply(context.Background(), tier1Path, nil, ids); !nsx.IsProtected(err) || nsx.ProtectedBy(err) != pi {
		t.Fatalf("the admin deleting the controller's routes without the override: %v; want NSX's protection refusal naming %s", err, pi)
	}
	bin := BuildBinaries(t)
	gcCmd := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "t1route"), append([]string{"gc"}, args...)...)
		cmd.Env = append(os.Environ(), simEnv(e.sim)...) // the admin's password
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := gcCmd("--cluster", e.id.UID, "--yes", "--allow-overwrite=false")
	if err == nil || !strings.Contains(out, `"`+pi+`"`) || !strings.Contains(out, "--allow-overwrite=true") || len(e.ours()) != 3 {
		t.Fatalf("gc --allow-overwrite=false: want a refusal naming %s and the fix, nothing deleted; got %v\n%s", pi, err, out)
	}
	if out, err = gcCmd("--cluster", e.id.UID, "--yes"); err != nil || !strings.Contains(out, "deleted 3 route(s)") || len(e.ours()) != 0 {
		t.Fatalf("gc --yes (override by default): %v\n%s", err, out)
	}

	// The cleanup controller: wl-1's routes, made by wl-1's controller on its
	// protected identity, go when its Cluster is deleted.
	dyn := InstallClusterAPICRD(t, e.cluster)
	wl := podroute.Identity{UID: "uid-wl-1", Name: "wl-1"}
	var routes []nsx.Route
	for i := 10; i < 12; i++ {
		want, _ := podroute.Desired(wl, []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")},
			[]podroute.Node{{Name: nodeName(i), PodCIDRs: []string{podCIDR(i)}, InternalIPs: []string{nodeIP(i)}}})
		for _, r := range want {
			routes = append(routes, r)
		}
	}
	if err := principalClient(t, e.sim, "wl-1-controller").Apply(context.Background(), tier1Path, routes, nil); err != nil {
		t.Fatal(err)
	}
	CreateCAPICluster(t, dyn, "default", "wl-1", nil)
	clusters := dyn.Resource(gc.ClusterAPIClusters).Namespace("default")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gc.NewCleanupController(gc.CleanupConfig{Router: tier1Path, Resync: time.Second, AllowOverwrite: true}, dyn, admin, zap.NewNop()).Run(ctx) //nolint:errcheck
	}()
	defer func() { cancel(); <-done }()
	Eventually(t, 20*time.Second, "finalizer on wl-1", func() (bool, string) {
		u, err := clusters.Get(context.Background(), "wl-1", metav1.GetOptions{})
		return err == nil && len(u.GetFinalizers()) == 1, fmt.Sprint(err)
	})
	if err := clusters.Delete(context.Background(), "wl-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 20*time.Second, "wl-1's protected routes removed", func() (bool, string) {
		return countCluster(e.sim, "wl-1") == 0, fmt.Sprint(routeIDs(e.sim))
	})
}

// The vSphere cloud provider's routes are protected (it authenticates as a
// protected principal identity): the controller on the admin's password
// replaces them with the override.
func TestAdoptProtectedCloudProviderRoutes(t *testing.T) {
	const cpi = "vsphere-cloud-provider"
	e := newEnv(t, nsxsim.Options{Tier1s: []string{tier1}, PrincipalIdentities: []string{cpi}})
	var cpRoutes []nsx.Route
	for i := range 2 {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
		cpRoutes = append(cpRoutes, nsx.Route{ID: "cpi-" + nodeName(i), Network: podCIDR(i), NextHops: []nsx.NextHop{{IP: nodeIP(i)}},
			Tags: []nsx.Tag{{Scope: podroute.ScopeCloudProviderCluster, Tag: e.id.Name}}})
	}
	if err := principalClient(t, e.sim, cpi).Apply(context.Background(), tier1Path, cpRoutes, nil); err != nil {
		t.Fatal(err)
	}
	defer e.startAdoptingController().stop()
	Eventually(t, 20*time.Second, "protected cloud provider routes adopted", func() (bool, string) {
		for i := range 2 {
			if _, ok := e.sim.Route(tier1, "cpi-"+nodeName(i)); ok {
				return false, "cloud provider route still there: cpi-" + nodeName(i)
			}
		}
		return len(e.ours()) == 2, fmt.Sprint(routeIDs(e.sim))
	})
}
