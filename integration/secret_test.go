//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/connect"
)

// TestSecretRotationOnRealAPIServer: the controller authenticates with a
// watched Secret on a real API server; the NSX password is rotated and then
// the Secret, and the controller keeps programming routes without a restart.
func TestSecretRotationOnRealAPIServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": "first-Pw"}})
	secret := func(pass string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "nsx-credentials"},
			Data: map[string][]byte{"username": []byte("admin"), "password": []byte(pass)}}
	}
	if _, err := c.Client.CoreV1().Secrets("kube-system").Create(ctx, secret("first-Pw"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	settings := SimSettings(sim, tier1)
	delete(settings, "NSXT_USERNAME")
	delete(settings, "NSXT_PASSWORD")
	settings["NSXT_SECRET_NAMESPACE"], settings["NSXT_SECRET_NAME"] = "kube-system", "nsx-credentials"
	_, client := Connect(t, settings, c.Client, connect.Options{})
	e := &env{t: t, cluster: c, kube: c.Client, sim: sim, nsx: client}
	uid, err := podroute.ClusterUID(ctx, c.Client)
	if err != nil {
		t.Fatal(err)
	}
	e.id = podroute.Identity{UID: uid, Name: "kubernetes"}
	want := map[string]string{}
	e.addNodes(want, 0, 5)
	e.startController("only", false, time.Minute)
	e.routesAre(20*time.Second, want)

	// The NSX admin rotates the password; the old session stays valid until
	// it expires, which we force, as a manager restart would.
	sim.SetPassword("admin", "second-Pw")
	sim.ExpireSessions()
	if _, err := c.Client.CoreV1().Secrets("kube-system").Update(ctx, secret("second-Pw"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.addNodes(want, 5, 10)
	e.routesAre(30*time.Second, want)
	if st := sim.Stats(); st.Logins < 2 {
		t.Fatalf("%d logins: the rotated credentials were never used", st.Logins)
	}
	t.Logf("converged with the rotated Secret; %d session logins", sim.Stats().Logins)
}

// The binary's /readyz turns 503 when its credentials Secret goes away
// (the controller can no longer authenticate), and recovers when it is back.
func TestReadyzFollowsSecretCredentials(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	sim := nsxsim.StartTest(t, nsxsim.Options{Tier1s: []string{tier1}})
	ctx := context.Background()
	user, pass := sim.User()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "nsx-credentials"},
		StringData: map[string]string{"username": user, "password": pass}}
	if _, err := c.Client.CoreV1().Secrets("kube-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	metrics := freeAddr(t)
	env := []string{"NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11", "NSXT_SECRET_NAMESPACE=kube-system", "NSXT_SECRET_NAME=nsx-credentials"}
	for _, kv := range simEnv(sim) {
		if !strings.HasPrefix(kv, "NSXT_USERNAME=") && !strings.HasPrefix(kv, "NSXT_PASSWORD=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "t1route"), "controller", "--kubeconfig", c.Kubeconfig, "--metrics-bind-address", metrics, "--metrics-secure=false", "--leader-elect=false")
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }) //nolint:errcheck
	readyz := func() (int, string) { return get("http://" + metrics + "/readyz") }
	Eventually(t, 20*time.Second, "ready", func() (bool, string) { code, body := readyz(); return code == 200, body })
	if err := c.Client.CoreV1().Secrets("kube-system").Delete(ctx, "nsx-credentials", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "not ready without the Secret", func() (bool, string) {
		code, body := readyz()
		return code == 503 && strings.Contains(body, "NSX credentials unavailable") && strings.Contains(body, "was deleted"), body
	})
	if _, err := c.Client.CoreV1().Secrets("kube-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "ready again", func() (bool, string) { code, body := readyz(); return code == 200, body })
}
