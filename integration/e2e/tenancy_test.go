//go:build integration && e2e

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/t1route/t1route/integration"
)

// NSX multi-tenancy with packets: the same lab, nodes and pods, with the
// cluster's routes kept in turn on the default space's Tier-1, on a Tier-1
// inside a project and on a VPC (nsxsim realizes every router's static
// routes in the router namespace). The project and VPC shapes run as a user
// whose role reaches only the project.
const (
	tenancyProject = "/orgs/default/projects/tenant-a"
	tenancyTier1   = tenancyProject + "/infra/tier-1s/t1-pods"
	tenancyVPC     = tenancyProject + "/vpcs/vpc-pods"
	projectUser    = "tenant-a-ops"
	projectUserPw  = "Tenant-a-Pw-1"
)

// tenancySimArgs are nsxsim's flags for the project's Tier-1, the VPC and the project user.
func tenancySimArgs() []string {
	return []string{"--router", tenancyTier1, "--router", tenancyVPC, "--project-user", projectUser + ":" + projectUserPw + ":" + tenancyProject}
}

// t1route runs the t1route binary with the world's environment.
func (w *world) t1route(args ...string) (string, error) {
	cmd := exec.Command(w.bin+"/t1route", args...)
	cmd.Env = append(os.Environ(), w.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tenancy moves the cluster's routes through the three router shapes and
// proves each with packets: the routes realized in the router, t1route check
// and routes list passing, and the external host reaching pods (HTTP sees
// its own address, ping, IPv6). Between shapes, gc removes the routes from
// the previous router and the pods become unreachable, so what carries the
// packets is the new router's routes. It returns its steps' counts.
func (w *world) tenancy(t *testing.T) (pass, fail int) {
	a1, b1 := w.pods[0], w.pods[2]
	shapes := []struct {
		name, path string
		extra      []string
	}{
		{"Tier-1 in the default space", "/infra/tier-1s/" + tier1, nil},
		{"Tier-1 inside a project", tenancyTier1, []string{"NSXT_USERNAME=" + projectUser, "NSXT_PASSWORD=" + projectUserPw}},
		{"VPC", tenancyVPC, []string{"NSXT_USERNAME=" + projectUser, "NSXT_PASSWORD=" + projectUserPw}},
	}
	routes := len(w.nodes) // one per node and family
	if w.dual {
		routes *= 2
	}
	for i, s := range shapes {
		ok := t.Run("tenancy: "+s.name, func(t *testing.T) {
			if i > 0 {
				stopProc(w.ctrl)
				out, err := w.t1route("gc", "--cluster", "e2e", "--yes", "--force")
				if err != nil || !strings.Contains(out, "deleted "+strconv.Itoa(routes)+" route(s)") {
					t.Fatalf("gc on %s: %v\n%s", shapes[i-1].path, err, out)
				}
				integration.Eventually(t, 10*time.Second, "the routes gone from the router", func() (bool, string) {
					out, _ := try("ip", "-n", w.router, "route")
					return !strings.Contains(out, a1.node.podCIDR), out
				})
				if out, err := inNetns(w.ext, "ping", "-n", "-c", "1", "-W", "1", a1.ip); err == nil {
					t.Fatalf("a pod answered with its route gone:\n%s", out)
				}
				w.nsxExtra = append([]string{"NSXT_ROUTER_PATH=" + s.path}, s.extra...)
				w.startController()
			}
			integration.Eventually(t, 30*time.Second, "the routes realized in the router", func() (bool, string) {
				out, _ := try("ip", "-n", w.router, "route")
				ok := strings.Contains(out, a1.node.podCIDR+" via "+a1.node.ip) && strings.Contains(out, b1.node.podCIDR+" via "+b1.node.ip)
				if w.dual {
					out6, _ := try("ip", "-n", w.router, "-6", "route")
					out += out6
					ok = ok && strings.Contains(out6, a1.node.podCIDR6+" via "+a1.node.ip6)
				}
				return ok, out
			})
			integration.Eventually(t, 20*time.Second, "t1route check to pass on "+s.path, func() (bool, string) {
				out, err := w.check()
				return err == nil && strings.Count(out, "PASS route") == routes, out
			})
			out, err := w.t1route("routes", "list", "-o", "json", "--kubeconfig", w.cluster.Kubeconfig, "--timeout", "20s")
			if err != nil || strings.Count(out, `"realized": "REALIZED"`) != routes {
				t.Fatalf("routes list on %s: %v\n%s", s.path, err, out)
			}
			if out := w.probe(t, w.ext, a1.ip); !strings.Contains(out, "own address 203.0.113.10") {
				t.Fatalf("the pod's echo did not see 203.0.113.10:\n%s", out)
			}
			w.ping(t, w.ext, b1.ip)
			if w.dual {
				w.ping(t, w.ext, b1.ip6)
			}
		})
		if ok {
			pass++
		} else {
			fail++
		}
	}
	return pass, fail
}
