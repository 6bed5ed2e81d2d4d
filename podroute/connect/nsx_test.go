package connect

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute/config"
)

// principals records which identity the simulator charged each request to.
type principals struct {
	mu  sync.Mutex
	ids []string
}

func (p *principals) logf(_ string, args ...any) {
	if len(args) >= 4 {
		p.mu.Lock()
		p.ids = append(p.ids, args[3].(string))
		p.mu.Unlock()
	}
}

func (p *principals) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) == 0 {
		return ""
	}
	return p.ids[len(p.ids)-1]
}

// TestEachAuthModeEndToEnd configures t1route from NSXT_* variables, as an
// operator would, and calls the simulator over real TLS in every mode.
func TestEachAuthModeEndToEnd(t *testing.T) {
	nsx.RouteSDKLogs(zap.NewNop())
	seen := &principals{}
	sim := nsxsim.StartTest(t, nsxsim.Options{
		Users:         map[string]string{"admin": "Admin-pw-1"},
		RemoteUsers:   map[string]string{"carol@corp": "Remote-pw-1"},
		RefreshTokens: map[string]string{"vmc-token-1": "vmc-user"},
		Logf:          seen.logf,
	})
	certPEM, keyPEM, _ := sim.IssueClientCert("t1route-principal")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600)
	base := map[string]string{
		"NSXT_POD_ROUTING_ENABLED": "true",
		"NSXT_MANAGER_HOST":        sim.Addr(),
		"NSXT_ROUTER_PATH":         "/infra/tier-1s/t1-routable",
		"CLUSTER_CIDR":             "100.96.0.0/11",
		"NSXT_ROOT_CA_DATA_B64":    base64.StdEncoding.EncodeToString(sim.CACertPEM()),
	}
	kube := fake.NewSimpleClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t1route", Name: "nsx"},
		Data: map[string][]byte{"username": []byte("admin"), "password": []byte("Admin-pw-1")}})

	cases := []struct {
		name      string
		env       map[string]string
		mode      config.AuthMode
		principal string
		logins    int
	}{
		{"session", map[string]string{"NSXT_USERNAME": "admin", "NSXT_PASSWORD": "Admin-pw-1"}, config.AuthPassword, "admin", 1},
		{"basic", map[string]string{"NSXT_USERNAME": "admin", "NSXT_PASSWORD": "Admin-pw-1", "NSXT_SESSION_AUTH": "false"}, config.AuthPassword, "admin", 0},
		{"remote", map[string]string{"NSXT_USERNAME": "carol@corp", "NSXT_PASSWORD": "Remote-pw-1", "NSXT_SESSION_AUTH": "false", "NSXT_REMOTE_AUTH": "true"}, config.AuthPassword, "carol@corp", 0},
		{"vmc", map[string]string{"NSXT_VMC_AUTH_HOST": sim.Addr(), "NSXT_VMC_ACCESS_TOKEN": "vmc-token-1"}, config.AuthVMCToken, "vmc-user", 0},
		{"secret", map[string]string{"NSXT_SECRET_NAMESPACE": "t1route", "NSXT_SECRET_NAME": "nsx"}, config.AuthSecret, "admin", 1},
		{"certificate data", map[string]string{"NSXT_CLIENT_CERT_DATA": base64.StdEncoding.EncodeToString(certPEM), "NSXT_CLIENT_CERT_KEY_DATA": string(keyPEM)}, config.AuthClientCert, "principal:t1route-principal", 0},
		{"certificate files", map[string]string{"NSXT_CLIENT_CERT_FILE": filepath.Join(dir, "tls.crt"), "NSXT_CLIENT_KEY_FILE": filepath.Join(dir, "tls.key")}, config.AuthClientCert, "principal:t1route-principal", 0},
		{"certificate over password", map[string]string{"NSXT_CLIENT_CERT_DATA": base64.StdEncoding.EncodeToString(certPEM), "NSXT_CLIENT_CERT_KEY_DATA": base64.StdEncoding.EncodeToString(keyPEM),
			"NSXT_USERNAME": "admin", "NSXT_PASSWORD": "Admin-pw-1"}, config.AuthClientCert, "principal:t1route-principal", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, problems := config.Load(config.FromMap(env))
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			if cfg.Auth.Mode != tc.mode {
				t.Fatalf("mode %s, want %s", cfg.Auth.Mode, tc.mode)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			conn, err := NSX(ctx, cfg, kube, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.WaitReady(ctx, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			sim.ResetStats()
			for range 3 {
				t1, err := conn.Client.Tier1(ctx, cfg.RouterPath)
				if err != nil || !t1.AdvertisesStaticRoutes() {
					t.Fatalf("Tier1 = %+v, %v", t1, err)
				}
			}
			if got := seen.last(); got != tc.principal {
				t.Fatalf("the simulator saw %q, want %q", got, tc.principal)
			}
			if got := sim.Stats().Logins; got != tc.logins {
				t.Fatalf("%d session logins for 3 calls, want %d", got, tc.logins)
			}
		})
	}
}

func TestConnectWithoutVerificationWarns(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	user, pass := sim.User()
	cfg, problems := config.Load(config.FromMap(map[string]string{
		"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": sim.URL(), "NSXT_ROUTER_PATH": "/infra/tier-1s/t1-routable",
		"CLUSTER_CIDR": "100.96.0.0/11", "NSXT_USERNAME": user, "NSXT_PASSWORD": pass, "NSXT_ALLOW_UNVERIFIED_SSL": "true",
	}))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var logs strings.Builder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zapcore.DebugLevel))
	conn, err := NSX(context.Background(), cfg, nil, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Client.Tier1(context.Background(), cfg.RouterPath); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "not verified") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}
