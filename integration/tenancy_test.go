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

const (
	tenantProject = "/orgs/default/projects/tenant-a"
	projectTier1  = tenantProject + "/infra/tier-1s/t1-pods"
	tenantVPC     = tenantProject + "/vpcs/vpc-pods"
)

// routesOn are the routes on router tagged with a cluster UID, by network.
func routesOn(sim *nsxsim.Simulator, router, uid string) map[string]nsxsim.StaticRoute {
	out := map[string]nsxsim.StaticRoute{}
	for _, r := range sim.Routes(router) {
		for _, tag := range r.Tags {
			if tag.Scope == podroute.ScopeClusterUID && tag.Tag == uid {
				out[r.Network] = r
			}
		}
	}
	return out
}

// TestTenancy runs every part that touches NSX on a Tier-1 inside a project
// and on a VPC, against a real kube-apiserver and nsxsim: the controller
// (as a user whose role reaches only the project: it creates and collects
// routes there, and nothing lands in /infra), the gc command, adoption of
// the cloud provider's protected routes with X-Allow-Overwrite, and the
// cleanup controller deleting a deleted cluster's protected routes.
func TestTenancy(t *testing.T) {
	bin := BuildBinaries(t)
	for _, router := range []string{projectTier1, tenantVPC} {
		t.Run(router, func(t *testing.T) {
			const cpi, wlPI = "vsphere-cloud-provider", "wl-1-controller"
			e := newEnv(t, nsxsim.Options{Tier1s: []string{tier1}, Routers: []string{projectTier1, tenantVPC},
				Users:        map[string]string{"admin": "admin-Pw-1", "alice": "alice-Pw-1"},
				ProjectUsers: map[string]string{"alice": tenantProject}, PrincipalIdentities: []string{cpi, wlPI}})
			path := nsx.MustRouterPath(router)
			settings := func(user string) map[string]string {
				s := maps.Clone(SimSettings(e.sim, tier1))
				s["NSXT_ROUTER_PATH"], s["NSXT_USERNAME"], s["NSXT_PASSWORD"] = router, user, user+"-Pw-1"
				return s
			}
			_, alice := Connect(t, settings("alice"), nil, connect.Options{})
			_, admin := Connect(t, settings("admin"), nil, connect.Options{})
			cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}

			// The controller as the project user.
			e.nsx = alice
			for i := range 3 {
				e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
			}
			ctrl := e.startControllerWith("alice", podroute.RunOptions{Config: podroute.Config{Identity: e.id, Router: path, ClusterCIDRs: cidrs,
				ResyncPeriod: time.Second}, Log: zap.NewNop()})
			Eventually(t, 20*time.Second, "3 routes on "+router, func() (bool, string) {
				got := routesOn(e.sim, router, e.id.UID)
				for i := range 3 {
					if r, ok := got[podCIDR(i)]; !ok || r.NextHops[0].IPAddress != nodeIP(i) || r.Path != router+"/static-routes/"+r.ID {
						return false, fmt.Sprint(got)
					}
				}
				return len(got) == 3, fmt.Sprint(got)
			})
			if err := e.kube.CoreV1().Nodes().Delete(context.Background(), nodeName(2), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			Eventually(t, 20*time.Second, "the deleted node's route collected", func() (bool, string) {
				got := routesOn(e.sim, router, e.id.UID)
				_, left := got[podCIDR(2)]
				return len(got) == 2 && !left, fmt.Sprint(got)
			})
			if n := len(e.sim.Routes(tier1)); n != 0 {
				t.Fatalf("%d routes landed on /infra", n)
			}
			ctrl.stop()

			// gc, as the project user, through the binary.
			cmd := exec.Command(filepath.Join(bin, "t1route"), "gc", "--cluster", e.id.UID, "--yes", "--force")
			cmd.Env = append(os.Environ(), Environ(settings("alice"))...)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "deleted 2 route(s)") || len(routesOn(e.sim, router, e.id.UID)) != 0 {
				t.Fatalf("gc on %s: %v\n%s", router, err, out)
			}

			// Adoption: the cloud provider's protected routes, replaced by the
			// admin's controller with the override, one atomic call.
			var cp []nsx.Route
			for i := range 2 {
				cp = append(cp, nsx.Route{ID: "cpi-" + nodeName(i), Network: podCIDR(i), NextHops: []nsx.NextHop{{IP: nodeIP(i)}},
					Tags: []nsx.Tag{{Scope: podroute.ScopeCloudProviderCluster, Tag: e.id.Name}}})
			}
			pi := principalSettings(t, e.sim, cpi)
			pi["NSXT_ROUTER_PATH"] = router
			_, cpiClient := Connect(t, pi, nil, connect.Options{})
			if err := cpiClient.Apply(context.Background(), path, cp, nil); err != nil {
				t.Fatal(err)
			}
			if err := alice.Apply(context.Background(), path, nil, []string{"cpi-" + nodeName(0)}); !nsx.IsProtected(err) {
				t.Fatalf("the project user deleting the cloud provider's route: %v; want NSX's protection refusal", err)
			}
			e.nsx = admin
			adopting := e.startControllerWith("adopting", podroute.RunOptions{Config: podroute.Config{Identity: e.id, Router: path, ClusterCIDRs: cidrs,
				AdoptCloudProviderRoutes: true}, Log: zap.NewNop()})
			Eventually(t, 20*time.Second, "protected cloud provider routes adopted", func() (bool, string) {
				for i := range 2 {
					if _, ok := e.sim.Route(router, "cpi-"+nodeName(i)); ok {
						return false, "still there: cpi-" + nodeName(i)
					}
				}
				return len(routesOn(e.sim, router, e.id.UID)) == 2, fmt.Sprint(routesOn(e.sim, router, e.id.UID))
			})
			adopting.stop()

			// The cleanup controller: wl-1's protected routes go when its Cluster does.
			dyn := InstallClusterAPICRD(t, e.cluster)
			wl := podroute.Identity{UID: "uid-wl-1", Name: "wl-1"}
			want, _ := podroute.Desired(wl, cidrs, []podroute.Node{{Name: nodeName(10), PodCIDRs: []string{podCIDR(10)}, InternalIPs: []string{nodeIP(10)}}})
			var routes []nsx.Route
			for _, r := range want {
				routes = append(routes, r)
			}
			wlSettings := principalSettings(t, e.sim, wlPI)
			wlSettings["NSXT_ROUTER_PATH"] = router
			_, wlClient := Connect(t, wlSettings, nil, connect.Options{})
			if err := wlClient.Apply(context.Background(), path, routes, nil); err != nil {
				t.Fatal(err)
			}
			CreateCAPICluster(t, dyn, "default", "wl-1", nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				gc.NewCleanupController(gc.CleanupConfig{Router: path, Resync: time.Second, AllowOverwrite: true}, dyn, admin, zap.NewNop()).Run(ctx) //nolint:errcheck
			}()
			defer func() { cancel(); <-done }()
			clusters := dyn.Resource(gc.ClusterAPIClusters).Namespace("default")
			Eventually(t, 20*time.Second, "finalizer on wl-1", func() (bool, string) {
				u, err := clusters.Get(context.Background(), "wl-1", metav1.GetOptions{})
				return err == nil && len(u.GetFinalizers()) == 1, fmt.Sprint(err)
			})
			if err := clusters.Delete(context.Background(), "wl-1", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			Eventually(t, 20*time.Second, "wl-1's protected routes removed from "+router, func() (bool, string) {
				return len(routesOn(e.sim, router, wl.UID)) == 0, fmt.Sprint(len(e.sim.Routes(router)))
			})
		})
	}
}
