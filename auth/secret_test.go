package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

func credSecret(user, pass string) *corev1.Secret {
	data := map[string][]byte{}
	if user != "" {
		data["username"] = []byte(user)
	}
	if pass != "" {
		data["password"] = []byte(pass)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t1route", Name: "nsx-credentials"}, Data: data}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestSecretRotationTakesEffectWithoutRestart(t *testing.T) {
	for _, session := range []bool{true, false} {
		name := map[bool]string{true: "session", false: "basic"}[session]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": "first-pw"}})
			kube := fake.NewSimpleClientset(credSecret("admin", "first-pw"))
			creds := &auth.SecretCredentials{Client: kube, Namespace: "t1route", Name: "nsx-credentials"}
			if err := creds.Run(ctx); err != nil {
				t.Fatal(err)
			}
			var authn nsx.Authenticator = auth.Basic{Credentials: creds}
			if session {
				authn = &auth.Session{BaseURL: sim.URL(), Credentials: creds}
			}
			c := newClient(t, sim, clientOpts{authn: authn, limits: nsx.Limits{MaxRetries: -1}})
			if _, err := c.Tier1(ctx, t1Path); err != nil {
				t.Fatal(err)
			}
			// The NSX admin rotates the password, then the Secret.
			sim.SetPassword("admin", "second-pw")
			if _, err := kube.CoreV1().Secrets("t1route").Update(ctx, credSecret("admin", "second-pw"), metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the rotated Secret", func() bool {
				_, p, _, _ := creds.Get()
				return p == "second-pw"
			})
			if _, err := c.Tier1(ctx, t1Path); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			if session && sim.Stats().Logins != 2 {
				t.Fatalf("%d logins, want a second one with the rotated credentials", sim.Stats().Logins)
			}
		})
	}
}

func TestSecretMissingIsNotReadyNotACrash(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim := nsxsim.StartTest(t, nsxsim.Options{Users: map[string]string{"admin": "pw"}})
	kube := fake.NewSimpleClientset()
	creds := &auth.SecretCredentials{Client: kube, Namespace: "t1route", Name: "nsx-credentials"}
	if err := creds.Run(ctx); err != nil {
		t.Fatal(err)
	}
	err := creds.Ready()
	if !errors.Is(err, auth.ErrNotReady) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "t1route/nsx-credentials") {
		t.Fatalf("Ready() = %v", err)
	}
	var attempts int
	c, _ := nsx.New(nsx.Config{Host: sim.URL(), TLS: tlsFor(sim), Auth: &auth.Session{BaseURL: sim.URL(), Credentials: creds},
		Observe: func(_ string, _, n int, _ time.Duration) { attempts = n }})
	_, err = c.Tier1(ctx, t1Path)
	if !errors.Is(err, auth.ErrNotReady) || nsx.IsTemporary(err) || attempts != 1 {
		t.Fatalf("call while not ready = %v after %d attempts (want ErrNotReady, not retried)", err, attempts)
	}
	// A Secret lacking a key names the key.
	kube.CoreV1().Secrets("t1route").Create(ctx, credSecret("admin", ""), metav1.CreateOptions{})
	eventually(t, "the missing key reported", func() bool {
		err := creds.Ready()
		return err != nil && strings.Contains(err.Error(), `"password"`)
	})
	// Fixing the Secret makes it ready.
	kube.CoreV1().Secrets("t1route").Update(ctx, credSecret("admin", "pw"), metav1.UpdateOptions{})
	eventually(t, "ready", func() bool { return creds.Ready() == nil })
	if _, err := c.Tier1(ctx, t1Path); err != nil {
		t.Fatal(err)
	}
	kube.CoreV1().Secrets("t1route").Delete(ctx, "nsx-credentials", metav1.DeleteOptions{})
	eventually(t, "deletion reported", func() bool {
		err := creds.Ready()
		return err != nil && strings.Contains(err.Error(), "deleted")
	})
}
