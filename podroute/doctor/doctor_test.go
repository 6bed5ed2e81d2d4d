package doctor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute/config"
)

// kube is a fake cluster whose access reviews allow everything but deny.
func kube(deny ...string) *fake.Clientset {
	k := fake.NewSimpleClientset()
	k.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authzv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = true
		for _, d := range deny {
			if d == ra.Verb+" "+ra.Resource {
				r.Status.Allowed = false
			}
		}
		return true, r, nil
	})
	return k
}

// mp is a Management Plane that answers what it is told.
type mp struct {
	st  nsx.ManagerStatus
	err error
}

func (m mp) ManagerStatus(context.Context) (nsx.ManagerStatus, error) { return m.st, m.err }

func answers(st nsx.ManagerStatus, err error) func(*nsx.Client) ManagementPlane {
	return func(*nsx.Client) ManagementPlane { return mp{st, err} }
}

func lines(rs []Result) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s: %s\n", r.Level, r.Check, r.Message)
	}
	return b.String()
}

func TestRun(t *testing.T) {
	nsx.RouteSDKLogs(zap.NewNop())
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{"t1-routable"}})
	user, pass := sim.User()
	env := func(over ...string) config.Config {
		m := map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": sim.Addr(), "NSXT_ROUTER_PATH": "/infra/tier-1s/t1-routable",
			"CLUSTER_CIDR": "100.96.0.0/11", "NSXT_USERNAME": user, "NSXT_PASSWORD": pass,
			"NSXT_ROOT_CA_DATA_B64": base64.StdEncoding.EncodeToString(sim.CACertPEM())}
		for _, kv := range over {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		cfg, problems := config.Load(config.FromMap(m))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		return cfg
	}
	healthy := Options{Config: env(), Kube: kube(), ServiceCIDRs: "198.51.100.0/24", LeaseNamespace: "t1route-system"}
	cases := []struct {
		name      string
		change    func(o *Options)
		want      []string // result lines that must appear
		wantFail  bool
		notChecks []string // checks that must not appear
	}{
		{"healthy: the simulator's own Management Plane", func(*Options) {}, []string{"PASS manager reachable", "PASS manager TLS: certificate verified",
			"PASS credentials: accepted", "PASS manager cluster: management cluster STABLE", "PASS Tier-1: /infra/tier-1s/t1-routable",
			"PASS route advertisement", "PASS service range", "PASS kubernetes", "PASS rbac: all 12 permissions the controller uses"}, false, nil},
		{"credentials refused by the Management Plane", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{}, fmt.Errorf("read: %w", &nsx.APIError{StatusCode: 403}))
		}, []string{"FAIL credentials: refused by the manager (HTTP 403)"}, true, []string{"Tier-1"}},
		{"Management Plane fails otherwise", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{}, fmt.Errorf("read: %w", &nsx.APIError{StatusCode: 503, Method: "GET", Path: "/api/v1/node"}))
		}, []string{"FAIL credentials: reading the manager's version: the NSX Manager is overloaded or unavailable (HTTP 503)"}, true, []string{"Tier-1"}},
		{"old and unstable NSX", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{Version: "2.5.1", Cluster: nsx.ClusterUnstable}, nil)
		}, []string{"WARN manager version: NSX 2.5.1 is older than 3.0", "FAIL manager cluster: management cluster is UNSTABLE"}, true, nil},
		{"no controllers", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{Version: "4.1.2", Cluster: nsx.ClusterNoControllers}, nil)
		}, []string{"FAIL manager cluster: management cluster is NO_CONTROLLERS"}, true, nil},
		{"degraded", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{Version: "4.1.2", Cluster: nsx.ClusterDegraded}, nil)
		}, []string{"WARN manager cluster: management cluster is DEGRADED"}, false, nil},
		{"cluster status not readable", func(o *Options) {
			o.ManagementPlane = answers(nsx.ManagerStatus{Version: "4.1.2", ClusterErr: &nsx.APIError{StatusCode: 403, Method: "GET", Path: "/api/v1/cluster/status"}}, nil)
		}, []string{"WARN manager cluster: status unknown: the NSX Manager refused the credentials (HTTP 403)"}, false, nil},
		{"unreachable manager: NSX checks skipped", func(o *Options) { o.Config = env("NSXT_MANAGER_HOST=127.0.0.1:1") },
			[]string{"FAIL manager reachable", "SKIP credentials: not checked: the manager is not reachable", "SKIP manager version: not checked",
				"SKIP manager cluster: not checked", "SKIP Tier-1: not checked", "SKIP route advertisement: not checked"}, true, nil},
		{"no Kubernetes: RBAC skipped", func(o *Options) { o.Kube, o.KubeErr = nil, errors.New("no kubeconfig") },
			[]string{"FAIL kubernetes: no kubeconfig", "SKIP rbac"}, true, nil},
		{"missing permissions", func(o *Options) { o.Kube = kube("get nodes", "update leases") },
			[]string{"FAIL rbac: not allowed: get nodes; update leases in t1route-system"}, true, nil},
		{"overlapping service range", func(o *Options) { o.ServiceCIDRs = "100.64.0.0/10" },
			[]string{"FAIL service range: CLUSTER_CIDR 100.96.0.0/11 overlaps the service range 100.64.0.0/10 (from --service-cidr)"}, true, nil},
		{"Secret credentials: their watch is a permission", func(o *Options) {
			o.Config = env("NSXT_USERNAME=", "NSXT_PASSWORD=", "NSXT_SECRET_NAMESPACE=creds", "NSXT_SECRET_NAME=nsx")
			k := kube("watch secrets")
			k.Tracker().Add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "nsx"}, //nolint:errcheck
				Data: map[string][]byte{"username": []byte(user), "password": []byte(pass)}})
			o.Kube = k
		}, []string{"PASS credentials: accepted", "FAIL rbac: not allowed: watch secrets nsx in creds"}, true, nil},
		{"configuration problems stop everything", func(o *Options) {
			o.Problems = []config.Problem{{Var: "CLUSTER_CIDR", What: "is not a CIDR"}}
		}, []string{"FAIL configuration: CLUSTER_CIDR: is not a CIDR"}, true, []string{"kubernetes", "manager reachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := healthy
			tc.change(&o)
			rs := Run(context.Background(), o)
			out := lines(rs)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			for _, c := range tc.notChecks {
				for _, r := range rs {
					if r.Check == c {
						t.Errorf("%s was checked:\n%s", c, out)
					}
				}
			}
			if Failed(rs) != tc.wantFail {
				t.Errorf("failed %v, want %v:\n%s", Failed(rs), tc.wantFail, out)
			}
			for _, r := range rs {
				if r.Level != Pass && r.Level != Skip && r.Fix == "" && r.Check != "credentials" && r.Check != "Tier-1" && r.Check != "rbac" {
					t.Errorf("%s %s has no fix", r.Level, r.Check)
				}
				if strings.Contains(r.Message+r.Fix, pass) {
					t.Fatal("a result shows the password")
				}
			}
		})
	}
}

func TestOlder(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{{"2.5.1", true}, {"3.0", false}, {"3.0.0.1", false}, {"4.1.2.0", false}, {"", true}, {"3", false}} {
		if got := older(tc.v, "3.0"); got != tc.want {
			t.Errorf("older(%q) = %v", tc.v, got)
		}
	}
}
