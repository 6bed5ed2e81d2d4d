//go:build integration

package integration

// End-to-end security tests of the controller side (make test-security):
// each runs the real kube-apiserver and nsxsim, and each failed on the code
// before its fix (issue "Security, second round").

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// securityNodeEvents are the reasons and messages of the events on node name.
func securityNodeEvents(t *testing.T, c *Cluster, name string) []string {
	t.Helper()
	evs, err := c.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs.Items {
		out = append(out, ev.Reason+": "+ev.Message)
	}
	return out
}

// nodeCondition is node name's NetworkUnavailable condition (nil: none).
func securityNodeCondition(t *testing.T, c *Cluster, name string) *corev1.NodeCondition {
	t.Helper()
	n, err := c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return condition(*n)
}

// A Node cannot capture another node's pod traffic: a newcomer whose pod
// CIDR equals, lies inside or contains a routed one (the whole cluster CIDR
// included) gets no route, an event and NetworkUnavailable=True naming the
// holder, and the holder's route is never touched; when the holder is
// deleted, the oldest claimant gets the route.
func TestSecurityNoRouteTheft(t *testing.T) {
	e := newEnv(t, nsxsim.Options{})
	ctx := context.Background()
	e.createNode("victim", "100.96.1.0/24", "198.51.100.10")
	e.createNode("bystander", "100.96.2.0/24", "198.51.100.11")
	e.startController("only", false, 2*time.Second)
	want := map[string]string{"100.96.1.0/24": "198.51.100.10", "100.96.2.0/24": "198.51.100.11"}
	e.routesAre(20*time.Second, want)
	victimRoute, _ := e.sim.Route(tier1, e.id.RouteID("100.96.1.0/24"))

	// The attackers, in this order (creationTimestamp has whole seconds):
	// the oldest names itself last, the next one sorts before the victim.
	time.Sleep(1100 * time.Millisecond)
	e.createNode("z-oldest-claimant", "100.96.1.0/24", "198.51.100.20")
	time.Sleep(1100 * time.Millisecond)
	attackers := map[string]string{ // node -> event reason
		"z-oldest-claimant": podroute.ReasonDuplicatePodCID,
		"a-equal":           podroute.ReasonDuplicatePodCID,
		"inside":            podroute.ReasonOverlappingPodCIDR,
		"around":            podroute.ReasonOverlappingPodCIDR,
		"whole-cluster":     podroute.ReasonOverlappingPodCIDR,
	}
	e.createNode("a-equal", "100.96.1.0/24", "198.51.100.21")
	e.createNode("inside", "100.96.1.128/25", "198.51.100.22")
	e.createNode("around", "100.96.0.0/23", "198.51.100.23")
	e.createNode("whole-cluster", "100.96.0.0/11", "198.51.100.24")

	refusedFor := func(holder string, nodes map[string]string) {
		t.Helper()
		for node, reason := range nodes {
			Eventually(t, 20*time.Second, node+" refused with an event and a condition naming "+holder, func() (bool, string) {
				evs := securityNodeEvents(t, e.cluster, node)
				event := false
				for _, ev := range evs {
					event = event || strings.HasPrefix(ev, reason+": ") && strings.Contains(ev, "node "+holder+"'s pod CIDR")
				}
				c := securityNodeCondition(t, e.cluster, node)
				cond := c != nil && c.Status == corev1.ConditionTrue && c.Reason == podroute.ReasonNoRouteCreated && strings.Contains(c.Message, "node "+holder+"'s pod CIDR")
				return event && cond, fmt.Sprintf("events %q, condition %+v", evs, c)
			})
		}
	}
	refusedFor("victim", attackers)
	e.routesAre(5*time.Second, want) // no route for any attacker's prefix
	if r, _ := e.sim.Route(tier1, e.id.RouteID("100.96.1.0/24")); r.Revision != victimRoute.Revision || r.NextHops[0].IPAddress != "198.51.100.10" {
		t.Fatalf("the victim's route was changed: %+v, was %+v", r, victimRoute)
	}

	// Nothing an attacker does to itself moves the route: readdressing, or
	// being deleted and created again.
	n, _ := e.kube.CoreV1().Nodes().Get(ctx, "a-equal", metav1.GetOptions{})
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.31"}}
	if _, err := e.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.kube.CoreV1().Nodes().Delete(ctx, "inside", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createNode("inside", "100.96.1.128/25", "198.51.100.22")
	time.Sleep(3 * time.Second) // passes and a resync
	e.routesAre(5*time.Second, want)
	if r, _ := e.sim.Route(tier1, e.id.RouteID("100.96.1.0/24")); r.Revision != victimRoute.Revision {
		t.Fatalf("the victim's route was rewritten: %+v, was %+v", r, victimRoute)
	}

	// The holder goes: the oldest claimant gets the route, the others are
	// now refused for it.
	if err := e.kube.CoreV1().Nodes().Delete(ctx, "victim", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want["100.96.1.0/24"] = "198.51.100.20"
	e.routesAre(20*time.Second, want)
	Eventually(t, 20*time.Second, "the new holder's NetworkUnavailable=False", func() (bool, string) {
		c := securityNodeCondition(t, e.cluster, "z-oldest-claimant")
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == podroute.ReasonRouteCreated, fmt.Sprintf("%+v", c)
	})
	delete(attackers, "z-oldest-claimant")
	refusedFor("z-oldest-claimant", attackers)
}

// securityLogBuffer is a log sink safe for concurrent writes.
type securityLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *securityLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *securityLogBuffer) Sync() error    { return nil }
func (s *securityLogBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A manager (or proxy) that echoes the request's headers and form body in
// its errors must not get the credentials into the controller's Events,
// node conditions or logs, or into CLI output: in every way of
// authenticating, for route writes, route lists, the session login and the
// VMC token exchange.
func TestSecurityNoCredentialsInEchoedErrors(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	const (
		password   = "Pa55-word-S3cret"
		remotePass = "vIDM-S3cret-pw"
		apiToken   = "vmc-API-token-S3cret-0123456789"
	)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nsx-credentials", Namespace: "kube-system"},
		Data: map[string][]byte{auth.SecretUsernameKey: []byte("admin"), auth.SecretPasswordKey: []byte(password)}}
	if _, err := c.Client.CoreV1().Secrets("kube-system").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, err := podroute.ClusterUID(context.Background(), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	type mode struct {
		name     string
		settings func(sim *nsxsim.Simulator, s map[string]string)
		authEcho *nsxsim.FaultRule // an echo of the authentication step itself, for the CLI
	}
	noPassword := func(s map[string]string) { delete(s, "NSXT_USERNAME"); delete(s, "NSXT_PASSWORD") }
	modes := []mode{
		{"session", func(*nsxsim.Simulator, map[string]string) {}, &nsxsim.FaultRule{Path: "^/api/session/create$", Echo: true, Status: 403}},
		{"basic", func(_ *nsxsim.Simulator, s map[string]string) { s["NSXT_SESSION_AUTH"] = "false" }, nil},
		{"remote", func(_ *nsxsim.Simulator, s map[string]string) {
			s["NSXT_USERNAME"], s["NSXT_PASSWORD"], s["NSXT_REMOTE_AUTH"], s["NSXT_SESSION_AUTH"] = "bob@corp", remotePass, "true", "false"
		}, nil},
		{"vmc-token", func(sim *nsxsim.Simulator, s map[string]string) {
			noPassword(s)
			s["NSXT_VMC_AUTH_HOST"], s["NSXT_VMC_ACCESS_TOKEN"] = sim.Addr(), apiToken
		}, &nsxsim.FaultRule{Path: "^/csp/", Echo: true, Status: 400}},
		{"kubernetes-secret", func(_ *nsxsim.Simulator, s map[string]string) {
			noPassword(s)
			s["NSXT_SECRET_NAMESPACE"], s["NSXT_SECRET_NAME"] = "kube-system", "nsx-credentials"
		}, nil},
		{"client-certificate", func(sim *nsxsim.Simulator, s map[string]string) {
			noPassword(s)
			certPEM, keyPEM, err := sim.IssueClientCert("t1route")
			if err != nil {
				t.Fatal(err)
			}
			s["NSXT_CLIENT_CERT_DATA"], s["NSXT_CLIENT_CERT_KEY_DATA"] = base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM)
		}, nil},
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": password}, RemoteUsers: map[string]string{"bob@corp": remotePass},
				RefreshTokens: map[string]string{apiToken: "admin"},
				Faults:        []nsxsim.FaultRule{{Method: "PATCH", Path: "^/policy/api/v1/infra$", Echo: true, Status: 400}}})
			settings := SimSettings(sim, tier1)
			m.settings(sim, settings)
			node, network := "echo-"+m.name, fmt.Sprintf("100.96.%d.0/24", 100+i)
			createNode(t, c, node, network, fmt.Sprintf("198.51.100.%d", 100+i))
			t.Cleanup(func() { c.Client.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) }) //nolint:errcheck

			// The controller: NSX refuses the route with an echo of the request.
			logs := &securityLogBuffer{}
			log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.DebugLevel))
			_, client := Connect(t, settings, c.Client, connect.Options{Log: log, Limits: nsx.Limits{MaxRetries: -1}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				podroute.Run(ctx, c.Client, client, podroute.RunOptions{Log: log, Config: podroute.Config{ //nolint:errcheck
					Identity: podroute.Identity{UID: uid, Name: "echo"}, Router: tier1Path,
					ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.0/11")}, ResyncPeriod: time.Hour}})
			}()
			defer func() { cancel(); <-done }()
			var texts []string
			Eventually(t, 30*time.Second, "the refusal in an event and the condition", func() (bool, string) {
				evs := securityNodeEvents(t, c, node)
				cond := securityNodeCondition(t, c, node)
				texts = append(evs[:len(evs):len(evs)], logs.String())
				if cond == nil {
					return false, fmt.Sprintf("events %q", evs)
				}
				texts = append(texts, cond.Message)
				refused := false
				for _, ev := range evs {
					refused = refused || strings.HasPrefix(ev, "FailedToCreateRoute: ") && strings.Contains(ev, "Invalid request PATCH")
				}
				return refused && strings.Contains(cond.Message, "NSX refused the route for "+network), fmt.Sprintf("events %q, condition %q", evs, cond.Message)
			})

			// The CLI: the route list echoed, then the authentication step.
			cli := func() string {
				cmd := exec.Command(filepath.Join(bin, "t1route"), "routes", "list", "--all-clusters", "--timeout", "20s")
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "KUBECONFIG=" + c.Kubeconfig}, Environ(settings)...)
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("t1route routes list succeeded against an echoing manager:\n%s", out)
				}
				return string(out)
			}
			sim.ClearFaults()
			sim.AddFault(nsxsim.FaultRule{Method: "GET", Path: "/static-routes$", Echo: true, Status: 400})
			out := cli()
			if !strings.Contains(out, "Invalid request GET") || !strings.Contains(out, "static-routes") {
				t.Fatalf("the CLI does not show the refusal:\n%s", out)
			}
			if m.name != "client-certificate" && !strings.Contains(out, nsx.Redacted) { // a certificate is not in the request
				t.Errorf("nothing is redacted in the CLI's output: did the echo happen?\n%s", out)
			}
			texts = append(texts, out)
			if m.authEcho != nil {
				sim.ClearFaults()
				sim.AddFault(*m.authEcho)
				texts = append(texts, cli())
			}

			all := strings.Join(texts, "\n")
			secrets := append([]string{password, remotePass, apiToken, base64.StdEncoding.EncodeToString([]byte("admin:" + password)),
				base64.StdEncoding.EncodeToString([]byte("bob@corp:" + remotePass))}, sim.IssuedSecrets()...)
			if v := settings["NSXT_CLIENT_CERT_KEY_DATA"]; v != "" {
				key, _ := base64.StdEncoding.DecodeString(v)
				secrets = append(secrets, strings.Split(string(key), "\n")[1])
			}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("secret %.6s… appears in events, conditions, logs or CLI output", s)
				}
			}
			if t.Failed() {
				t.Logf("what was checked:\n%s", all)
			}
		})
	}
}

// securityRunT1route runs the t1route binary with env only (and PATH), returning
// its combined output and exit status.
func securityRunT1route(t *testing.T, bin string, env map[string]string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "t1route"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, Environ(env)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String() + "\n(killed after 20 s)", -1
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// NSXT_VMC_AUTH_HOST with a refresh token in its query (or user info) is
// refused by validate-config, render and doctor naming the variable,
// without printing the token; and NSXT_ALLOW_UNVERIFIED_SSL never lets the
// API token go to a token service whose certificate is not trusted.
func TestSecurityVMCAuthHost(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	const apiToken = "vmc-API-token-S3cret-0123456789"
	sim := nsxsim.StartTest(t, nsxsim.Options{RefreshTokens: map[string]string{apiToken: "admin"}})
	base := SimSettings(sim, tier1)
	delete(base, "NSXT_USERNAME")
	delete(base, "NSXT_PASSWORD")
	base["NSXT_POD_ROUTING_ENABLED"], base["CLUSTER_CIDR"] = "true", "100.96.0.0/11"
	base["NSXT_VMC_ACCESS_TOKEN"] = apiToken
	for _, host := range []string{sim.Addr() + "?refresh_token=Query-S3cret-token", "https://user:Userinfo-S3cret@" + sim.Addr(), sim.Addr() + "/csp/Path-S3cret"} {
		env := maps.Clone(base)
		env["NSXT_VMC_AUTH_HOST"] = host
		for _, args := range [][]string{{"validate-config"}, {"render"}, {"doctor", "--kubeconfig", c.Kubeconfig, "--timeout", "10s"}} {
			out, code := securityRunT1route(t, bin, env, args...)
			if code == 0 || !strings.Contains(out, "NSXT_VMC_AUTH_HOST") {
				t.Errorf("t1route %s with NSXT_VMC_AUTH_HOST=%.30s…: exit %d, want a refusal naming NSXT_VMC_AUTH_HOST:\n%s", args[0], host, code, out)
			}
			for _, s := range []string{"Query-S3cret-token", "Userinfo-S3cret", "Path-S3cret", "refresh_token", apiToken} {
				if strings.Contains(out, s) {
					t.Errorf("t1route %s prints %q:\n%s", args[0], s, out)
				}
			}
		}
	}

	// NSXT_ALLOW_UNVERIFIED_SSL=true: the manager's certificate is not
	// verified, the token service's still is (nsxsim's CA is not among the
	// system's roots), so the API token is never sent.
	env := maps.Clone(base)
	delete(env, "NSXT_ROOT_CA_DATA_B64")
	env["NSXT_VMC_AUTH_HOST"], env["NSXT_ALLOW_UNVERIFIED_SSL"] = sim.Addr(), "true"
	out, code := securityRunT1route(t, bin, env, "validate-config")
	if code != 0 || !strings.Contains(out, "certificate always verified") || !strings.Contains(out, "covers the manager only") {
		t.Errorf("validate-config does not say what NSXT_ALLOW_UNVERIFIED_SSL covers (exit %d):\n%s", code, out)
	}
	env["KUBECONFIG"] = c.Kubeconfig
	out, code = securityRunT1route(t, bin, env, "routes", "list", "--all-clusters", "--timeout", "15s")
	if code == 0 || !strings.Contains(out, "certificate is not trusted") {
		t.Errorf("routes list with an untrusted token service: exit %d, want a refusal of its certificate:\n%s", code, out)
	}
	if n := sim.Stats().TokenExchanges; n != 0 {
		t.Errorf("the API token was exchanged %d time(s) with a token service whose certificate is not trusted", n)
	}
}

// NSXT_MANAGEMENT_CIDR and NSXT_MANAGEMENT_ALLOWED_PODS values that would
// cut every pod off, cut pods off from each other or exempt a whole
// namespace are refused: validate-config exits 2 naming the variable, and
// the controller does not start, so it publishes no such guard on the API
// server.
func TestSecurityManagementGuardSettings(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	c.ApplyCRD(t, cnp.CRD())
	cnps := dynamic.NewForConfigOrDie(c.Config).Resource(cnp.Resource)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	base := SimSettings(sim, tier1)
	base["NSXT_POD_ROUTING_ENABLED"], base["CLUSTER_CIDR"] = "true", "100.96.0.0/11,fd00:100:96::/48"
	cases := []struct {
		name, variable string
		set            map[string]string
	}{
		{"every IPv4 address in two halves", "NSXT_MANAGEMENT_CIDR", map[string]string{"NSXT_MANAGEMENT_CIDR": "0.0.0.0/1,128.0.0.0/1"}},
		{"the cluster CIDR", "NSXT_MANAGEMENT_CIDR", map[string]string{"NSXT_MANAGEMENT_CIDR": "100.96.0.0/11"}},
		{"a range inside the cluster CIDR", "NSXT_MANAGEMENT_CIDR", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28,100.96.5.0/24"}},
		{"a range around the IPv6 cluster CIDR", "NSXT_MANAGEMENT_CIDR", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28,fd00:100::/32"}},
		{"a whole namespace exempted", "NSXT_MANAGEMENT_ALLOWED_PODS", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28", "NSXT_MANAGEMENT_ALLOWED_PODS": "default:!nonexistent"}},
		{"an invalid namespace", "NSXT_MANAGEMENT_ALLOWED_PODS", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28", "NSXT_MANAGEMENT_ALLOWED_PODS": "Bad_NS:app=x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(base)
			maps.Copy(env, tc.set)
			out, code := securityRunT1route(t, bin, env, "validate-config")
			if code != 2 || !strings.Contains(out, tc.variable+": ") {
				t.Errorf("validate-config: exit %d, want 2 naming %s:\n%s", code, tc.variable, out)
			}
			out, code = securityRunT1route(t, bin, env, "controller", "--kubeconfig", c.Kubeconfig, "--metrics-bind-address", "127.0.0.1:0",
				"--leader-elect=false")
			if code != 2 || !strings.Contains(out, tc.variable+": ") {
				t.Errorf("the controller: exit %d, want 2 naming %s:\n%s", code, tc.variable, out)
			}
			list, err := cnps.List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) > 0 {
				t.Errorf("the controller published %d ClusterNetworkPolicies for a guard it should refuse, e.g. %s", len(list.Items), list.Items[0].GetName())
				for _, p := range list.Items {
					cnps.Delete(context.Background(), p.GetName(), metav1.DeleteOptions{}) //nolint:errcheck
				}
			}
		})
	}
	// A dual-stack cluster guarding IPv4 only: valid, with the consequence said.
	env := maps.Clone(base)
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	if out, code := securityRunT1route(t, bin, env, "validate-config"); code != 0 || !strings.Contains(out, "pods reach it over IPv6 unguarded") {
		t.Errorf("validate-config of a dual-stack cluster guarding IPv4 only: exit %d, want a warning:\n%s", code, out)
	}
}

// gc --orphans never deletes the routes of a live cluster: not those of the
// cluster the kubeconfig in use reaches, nor those of the management
// cluster itself, even when neither is a Cluster API cluster; --keep
// leaves one out, and the real orphans still go.
func TestSecurityGCOrphansSparesLiveClusters(t *testing.T) {
	bin := BuildBinaries(t)
	mgmt := StartCluster(t)
	workload := StartCluster(t)
	dyn := InstallClusterAPICRD(t, mgmt)
	CreateCAPICluster(t, dyn, "default", "capi-live", nil)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	mgmtUID, err := podroute.ClusterUID(context.Background(), mgmt.Client)
	if err != nil {
		t.Fatal(err)
	}
	workloadUID, err := podroute.ClusterUID(context.Background(), workload.Client)
	if err != nil {
		t.Fatal(err)
	}
	putClusterRoutes(t, sim, workloadUID, "workload", 0, 2) // not in Cluster API, alive through the kubeconfig in use
	putClusterRoutes(t, sim, mgmtUID, "mgmt", 10, 2)        // the management cluster itself
	putClusterRoutes(t, sim, "uid-capi-live", "capi-live", 20, 1)
	putClusterRoutes(t, sim, "uid-gone", "gone", 30, 3)
	env := SimSettings(sim, tier1)
	env["KUBECONFIG"] = workload.Kubeconfig
	before := routeIDs(sim)
	gc := func(args ...string) (string, int) {
		return securityRunT1route(t, bin, env, append([]string{"gc", "--orphans", "--live-clusters-kubeconfig", mgmt.Kubeconfig, "--timeout", "30s"}, args...)...)
	}
	for _, args := range [][]string{{"--yes"}, {}, {"--keep", mgmtUID, "--yes"}, {"--keep", "workload", "--yes"}} {
		out, code := gc(args...)
		if code != 2 || !strings.Contains(out, "refusing") {
			t.Errorf("gc --orphans %v: exit %d, want 2 refusing a live cluster:\n%s", args, code, out)
		}
		if !strings.Contains(out, workloadUID) && !strings.Contains(out, mgmtUID) {
			t.Errorf("gc --orphans %v does not name the live cluster:\n%s", args, out)
		}
		if got := routeIDs(sim); len(got) != len(before) {
			t.Fatalf("gc --orphans %v deleted routes of a live cluster: %d routes left of %d", args, len(got), len(before))
		}
	}
	out, code := gc("--keep", mgmtUID, "--keep", workloadUID, "--yes")
	if code != 0 || !strings.Contains(out, "deleted 3 route(s)") {
		t.Fatalf("gc --orphans with the live clusters kept: exit %d:\n%s", code, out)
	}
	if countCluster(sim, "gone") != 0 || countCluster(sim, "workload") != 2 || countCluster(sim, "mgmt") != 2 || countCluster(sim, "capi-live") != 1 {
		t.Fatalf("after gc: %v", routeIDs(sim))
	}
}
