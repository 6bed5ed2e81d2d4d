//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute"
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
	creds := &auth.SecretCredentials{Client: c.Client, Namespace: "kube-system", Name: "nsx-credentials"}
	if err := creds.Run(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := nsx.New(nsx.Config{Host: sim.URL(), TLS: &tls.Config{RootCAs: sim.CertPool()},
		Auth: &auth.Session{BaseURL: sim.URL(), Credentials: creds}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cluster: c, kube: c.Client, sim: sim, nsx: client}
	uid, err := podroute.ClusterUID(ctx, c.Client)
	if err != nil {
		t.Fatal(err)
	}
	e.id = podroute.Identity{UID: uid, Name: "kubernetes"}
	want := map[string]string{}
	for i := range 5 {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
		want[podCIDR(i)] = nodeIP(i)
	}
	e.startController("only", false, time.Minute)
	e.routesAre(20*time.Second, want)

	// The NSX admin rotates the password; the old session stays valid until
	// it expires, which we force, as a manager restart would.
	sim.SetPassword("admin", "second-Pw")
	sim.ExpireSessions()
	if _, err := c.Client.CoreV1().Secrets("kube-system").Update(ctx, secret("second-Pw"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 10; i++ {
		e.createNode(nodeName(i), podCIDR(i), nodeIP(i))
		want[podCIDR(i)] = nodeIP(i)
	}
	e.routesAre(30*time.Second, want)
	if st := sim.Stats(); st.Logins < 2 {
		t.Fatalf("%d logins: the rotated credentials were never used", st.Logins)
	}
	t.Logf("converged with the rotated Secret; %d session logins", sim.Stats().Logins)
}
