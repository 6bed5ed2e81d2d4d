package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/t1route/t1route/podroute/config/configtest"
)

func TestLoadConfigRejectsMalformedInput(t *testing.T) {
	pki := configtest.NewPKI(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pki.CertPEM, 0o600)
	os.WriteFile(keyFile, pki.OtherKeyPEM, 0o600)
	keySecret := strings.Split(string(pki.KeyPEM), "\n")[1]

	cases := []struct {
		name    string
		set     map[string]string
		unset   []string
		wantVar string
		want    string
	}{
		{"enabled not a bool", map[string]string{"NSXT_POD_ROUTING_ENABLED": "yes please"}, nil, "NSXT_POD_ROUTING_ENABLED", "not true or false"},
		{"manager missing", nil, []string{"NSXT_MANAGER_HOST"}, "NSXT_MANAGER_HOST", "required"},
		{"manager plain http", map[string]string{"NSXT_MANAGER_HOST": "http://nsx.example.com"}, nil, "NSXT_MANAGER_HOST", "not https"},
		{"manager without host", map[string]string{"NSXT_MANAGER_HOST": "https://"}, nil, "NSXT_MANAGER_HOST", "no host"},
		{"manager bad port", map[string]string{"NSXT_MANAGER_HOST": "nsx.example.com:99999"}, nil, "NSXT_MANAGER_HOST", "port"},
		{"manager with credentials", map[string]string{"NSXT_MANAGER_HOST": "https://admin:Url-S3cret@nsx.example.com"}, nil, "NSXT_MANAGER_HOST", "holds credentials"},
		{"manager with a query", map[string]string{"NSXT_MANAGER_HOST": "https://nsx.example.com/api?x=1"}, nil, "NSXT_MANAGER_HOST", "query"},
		{"manager with a token in the query", map[string]string{"NSXT_MANAGER_HOST": "https://nsx.example.com/api?token=Url-S3cret"}, nil, "NSXT_MANAGER_HOST", "not shown"},
		{"manager with a token in the fragment", map[string]string{"NSXT_MANAGER_HOST": "nsx.example.com#Url-S3cret"}, nil, "NSXT_MANAGER_HOST", "not shown"},
		{"manager not a host name", map[string]string{"NSXT_MANAGER_HOST": "nsx_manager!.example"}, nil, "NSXT_MANAGER_HOST", "not a valid host"},
		{"router path missing", nil, []string{"NSXT_ROUTER_PATH"}, "NSXT_ROUTER_PATH", "required"},
		{"router path bare id", map[string]string{"NSXT_ROUTER_PATH": "t1-routable"}, nil, "NSXT_ROUTER_PATH", "/infra/tier-1s/<id>"},
		{"router path tier-0", map[string]string{"NSXT_ROUTER_PATH": "/infra/tier-0s/t0"}, nil, "NSXT_ROUTER_PATH", "/infra/tier-1s/<id>"},
		{"router path empty id", map[string]string{"NSXT_ROUTER_PATH": "/infra/tier-1s/"}, nil, "NSXT_ROUTER_PATH", "/infra/tier-1s/<id>"},
		{"router path nested", map[string]string{"NSXT_ROUTER_PATH": "/infra/tier-1s/t1/static-routes"}, nil, "NSXT_ROUTER_PATH", "/infra/tier-1s/<id>"},
		{"cluster CIDR missing", nil, []string{"CLUSTER_CIDR"}, "CLUSTER_CIDR", "required"},
		{"cluster CIDR not a CIDR", map[string]string{"CLUSTER_CIDR": "100.96.0.0"}, nil, "CLUSTER_CIDR", "not a CIDR"},
		{"cluster CIDR bad prefix", map[string]string{"CLUSTER_CIDR": "100.96.0.0/33"}, nil, "CLUSTER_CIDR", "not a CIDR"},
		{"cluster CIDR host bits", map[string]string{"CLUSTER_CIDR": "100.96.0.1/11"}, nil, "CLUSTER_CIDR", "did you mean 100.96.0.0/11"},
		{"cluster CIDR same family twice", map[string]string{"CLUSTER_CIDR": "100.96.0.0/11,100.128.0.0/11"}, nil, "CLUSTER_CIDR", "same IP family"},
		{"cluster CIDR three", map[string]string{"CLUSTER_CIDR": "100.96.0.0/11,fd00::/48,10.0.0.0/8"}, nil, "CLUSTER_CIDR", "3 CIDRs"},
		{"cluster CIDR default route", map[string]string{"CLUSTER_CIDR": "0.0.0.0/0"}, nil, "CLUSTER_CIDR", "default route"},
		{"cluster CIDR default route even if short allowed", map[string]string{"CLUSTER_CIDR": "0.0.0.0/0", "NSXT_ALLOW_SHORT_CLUSTER_CIDR": "true"}, nil, "CLUSTER_CIDR", "default route"},
		{"cluster CIDR IPv4 shorter than /8", map[string]string{"CLUSTER_CIDR": "100.0.0.0/7"}, nil, "CLUSTER_CIDR", "wider than /8"},
		{"cluster CIDR IPv6 shorter than /32", map[string]string{"CLUSTER_CIDR": "100.96.0.0/11,fd00::/8"}, nil, "CLUSTER_CIDR", "wider than /32"},
		{"cluster CIDR loopback", map[string]string{"CLUSTER_CIDR": "127.0.0.0/16"}, nil, "CLUSTER_CIDR", "127.0.0.0/8"},
		{"cluster CIDR link-local", map[string]string{"CLUSTER_CIDR": "169.254.0.0/16"}, nil, "CLUSTER_CIDR", "169.254.0.0/16"},
		{"cluster CIDR multicast", map[string]string{"CLUSTER_CIDR": "224.1.0.0/16"}, nil, "CLUSTER_CIDR", "224.0.0.0/4"},
		{"cluster CIDR IPv4-mapped", map[string]string{"CLUSTER_CIDR": "::ffff:100.96.0.0/107"}, nil, "CLUSTER_CIDR", "IPv4-mapped"},
		{"management CIDR not a CIDR", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0"}, nil, "NSXT_MANAGEMENT_CIDR", "not a CIDR"},
		{"management CIDR everything", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28,0.0.0.0/0"}, nil, "NSXT_MANAGEMENT_CIDR", "every address"},
		{"management CIDR only commas", map[string]string{"NSXT_MANAGEMENT_CIDR": " , "}, nil, "NSXT_MANAGEMENT_CIDR", "no CIDR"},
		{"management allowed pods without a CIDR", map[string]string{"NSXT_MANAGEMENT_ALLOWED_PODS": "tools:app=backup"}, nil, "NSXT_MANAGEMENT_ALLOWED_PODS", "without NSXT_MANAGEMENT_CIDR"},
		{"management allowed pods without a namespace", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28", "NSXT_MANAGEMENT_ALLOWED_PODS": "app=backup"}, nil, "NSXT_MANAGEMENT_ALLOWED_PODS", "<namespace>:<label selector>"},
		{"management allowed pods bad selector", map[string]string{"NSXT_MANAGEMENT_CIDR": "203.0.113.0/28", "NSXT_MANAGEMENT_ALLOWED_PODS": "tools:app in (a"}, nil, "NSXT_MANAGEMENT_ALLOWED_PODS", "tools:app in (a"},
		{"allow short not a bool", map[string]string{"NSXT_ALLOW_SHORT_CLUSTER_CIDR": "maybe"}, nil, "NSXT_ALLOW_SHORT_CLUSTER_CIDR", "not true or false"},
		{"cluster name invalid", map[string]string{"CLUSTER_NAME": "Prod_East!"}, nil, "CLUSTER_NAME", "not a valid cluster name"},
		{"cluster name too long", map[string]string{"CLUSTER_NAME": strings.Repeat("a", 64)}, nil, "CLUSTER_NAME", "63"},
		{"cert data not base64 or PEM", map[string]string{"NSXT_CLIENT_CERT_DATA": "%%%Cert-S3cret%%%", "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.KeyPEM)}, nil, "NSXT_CLIENT_CERT_DATA", "neither PEM nor base64"},
		{"cert data base64 of not-PEM", map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64([]byte("hello")), "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.KeyPEM)}, nil, "NSXT_CLIENT_CERT_DATA", "not PEM"},
		{"cert data is a key", map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64(pki.KeyPEM), "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.KeyPEM)}, nil, "NSXT_CLIENT_CERT_DATA", "not a CERTIFICATE"},
		{"key is a certificate", map[string]string{"NSXT_CLIENT_CERT_DATA": string(pki.CertPEM), "NSXT_CLIENT_CERT_KEY_DATA": string(pki.CertPEM)}, nil, "NSXT_CLIENT_CERT_KEY_DATA", "not a PRIVATE KEY"},
		{"key does not match", map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64(pki.CertPEM), "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.OtherKeyPEM)}, nil, "NSXT_CLIENT_CERT_KEY_DATA", "does not match"},
		{"cert without key", map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64(pki.CertPEM)}, nil, "NSXT_CLIENT_CERT_KEY_DATA", "required"},
		{"key without cert", map[string]string{"NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.KeyPEM)}, nil, "NSXT_CLIENT_CERT_DATA", "required"},
		{"cert as data and files", map[string]string{"NSXT_CLIENT_CERT_DATA": configtest.B64(pki.CertPEM), "NSXT_CLIENT_CERT_KEY_DATA": configtest.B64(pki.KeyPEM), "NSXT_CLIENT_CERT_FILE": certFile, "NSXT_CLIENT_KEY_FILE": keyFile}, nil, "NSXT_CLIENT_CERT_FILE", "not both"},
		{"cert file missing", map[string]string{"NSXT_CLIENT_CERT_FILE": filepath.Join(dir, "absent.crt"), "NSXT_CLIENT_KEY_FILE": keyFile}, nil, "NSXT_CLIENT_CERT_FILE", "cannot read"},
		{"cert files do not match", map[string]string{"NSXT_CLIENT_CERT_FILE": certFile, "NSXT_CLIENT_KEY_FILE": keyFile}, nil, "NSXT_CLIENT_KEY_FILE", "does not match"},
		{"key file without cert file", map[string]string{"NSXT_CLIENT_KEY_FILE": keyFile}, nil, "NSXT_CLIENT_CERT_FILE", "required"},
		{"root CA not base64", map[string]string{"NSXT_ROOT_CA_DATA_B64": "not base64!"}, nil, "NSXT_ROOT_CA_DATA_B64", "not base64"},
		{"root CA given as PEM", map[string]string{"NSXT_ROOT_CA_DATA_B64": string(pki.CAPEM)}, nil, "NSXT_ROOT_CA_DATA_B64", "base64 -w0"},
		{"root CA of a key", map[string]string{"NSXT_ROOT_CA_DATA_B64": configtest.B64(pki.KeyPEM)}, nil, "NSXT_ROOT_CA_DATA_B64", "not a CERTIFICATE"},
		{"root CA of nothing", map[string]string{"NSXT_ROOT_CA_DATA_B64": configtest.B64([]byte("plain text"))}, nil, "NSXT_ROOT_CA_DATA_B64", "no PEM certificate"},
		{"pinned CA and unverified", map[string]string{"NSXT_ROOT_CA_DATA_B64": configtest.B64(pki.CAPEM), "NSXT_ALLOW_UNVERIFIED_SSL": "true"}, nil, "NSXT_ALLOW_UNVERIFIED_SSL", "not both"},
		{"unverified not a bool", map[string]string{"NSXT_ALLOW_UNVERIFIED_SSL": "sometimes"}, nil, "NSXT_ALLOW_UNVERIFIED_SSL", "not true or false"},
		{"VMC host is a URL with a path", map[string]string{"NSXT_VMC_AUTH_HOST": "https://console.cloud.vmware.com/csp/gateway", "NSXT_VMC_ACCESS_TOKEN": "Vmc-S3cret-token"}, nil, "NSXT_VMC_AUTH_HOST", "has a path"},
		{"VMC host over http", map[string]string{"NSXT_VMC_AUTH_HOST": "http://console.cloud.vmware.com", "NSXT_VMC_ACCESS_TOKEN": "Vmc-S3cret-token"}, nil, "NSXT_VMC_AUTH_HOST", "not https"},
		{"VMC host without token", map[string]string{"NSXT_VMC_AUTH_HOST": "console.cloud.vmware.com"}, nil, "NSXT_VMC_ACCESS_TOKEN", "required"},
		{"VMC token without host", map[string]string{"NSXT_VMC_ACCESS_TOKEN": "Vmc-S3cret-token"}, nil, "NSXT_VMC_AUTH_HOST", "required"},
		{"Secret name invalid", map[string]string{"NSXT_SECRET_NAMESPACE": "t1route", "NSXT_SECRET_NAME": "NSX_Credentials"}, nil, "NSXT_SECRET_NAME", "not a valid Secret name"},
		{"Secret namespace invalid", map[string]string{"NSXT_SECRET_NAMESPACE": "kube.system", "NSXT_SECRET_NAME": "nsx"}, nil, "NSXT_SECRET_NAMESPACE", "not a valid namespace"},
		{"Secret name without namespace", map[string]string{"NSXT_SECRET_NAME": "nsx"}, nil, "NSXT_SECRET_NAMESPACE", "required"},
		{"username without password", nil, []string{"NSXT_PASSWORD"}, "NSXT_PASSWORD", "required"},
		{"password without username", nil, []string{"NSXT_USERNAME"}, "NSXT_USERNAME", "required"},
		{"no authentication", nil, []string{"NSXT_USERNAME", "NSXT_PASSWORD"}, "NSXT authentication", "no way to authenticate"},
		{"session auth not a bool", map[string]string{"NSXT_SESSION_AUTH": "nah"}, nil, "NSXT_SESSION_AUTH", "not true or false"},
		{"remote auth not a bool", map[string]string{"NSXT_REMOTE_AUTH": "2"}, nil, "NSXT_REMOTE_AUTH", "not true or false"},
		{"node status QPS not a number", map[string]string{"T1ROUTE_NODE_STATUS_QPS": "fast"}, nil, "T1ROUTE_NODE_STATUS_QPS", "not a number"},
		{"node status QPS not finite", map[string]string{"T1ROUTE_NODE_STATUS_QPS": "+Inf"}, nil, "T1ROUTE_NODE_STATUS_QPS", "not a number"},
		{"node status QPS zero", map[string]string{"T1ROUTE_NODE_STATUS_QPS": "0"}, nil, "T1ROUTE_NODE_STATUS_QPS", "not between"},
		{"node status QPS too high", map[string]string{"T1ROUTE_NODE_STATUS_QPS": "100000"}, nil, "T1ROUTE_NODE_STATUS_QPS", "not between"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := configtest.ValidEnv()
			for k, v := range tc.set {
				env[k] = v
			}
			for _, k := range tc.unset {
				delete(env, k)
			}
			_, problems := Load(FromMap(env))
			var all []string
			found := false
			for _, p := range problems {
				all = append(all, p.String())
				if p.Var == tc.wantVar && strings.Contains(p.What, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a problem with %s containing %q; got %q", tc.wantVar, tc.want, all)
			}
			text := strings.Join(all, "\n")
			for _, secret := range []string{"Very-S3cret-pw", "Cert-S3cret", "Vmc-S3cret-token", "Url-S3cret", keySecret} {
				if strings.Contains(text, secret) {
					t.Fatalf("a problem quotes a secret: %q", text)
				}
			}
		})
	}
}

func TestLoadConfigValid(t *testing.T) {
	pki := configtest.NewPKI(t)
	t.Run("short cluster CIDR allowed with a note", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["CLUSTER_CIDR"] = "100.0.0.0/7"
		env["NSXT_ALLOW_SHORT_CLUSTER_CIDR"] = "true"
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		if len(cfg.ClusterCIDRs) != 1 || cfg.ClusterCIDRs[0].String() != "100.0.0.0/7" || !strings.Contains(strings.Join(cfg.Notes, "\n"), "NSXT_ALLOW_SHORT_CLUSTER_CIDR=true: CLUSTER_CIDR 100.0.0.0/7") {
			t.Fatalf("%v %q", cfg.ClusterCIDRs, cfg.Notes)
		}
	})
	t.Run("defaults and normalisation", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["NSXT_MANAGER_HOST"] = "https://nsx.example.com:8443/"
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		if cfg.ManagerURL != "https://nsx.example.com:8443" || cfg.ClusterName != "kubernetes" || !cfg.Auth.SessionAuth || cfg.Auth.Mode != AuthPassword || cfg.NodeStatusQPS != 0 {
			t.Fatalf("%+v", cfg)
		}
	})
	t.Run("node status QPS", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["T1ROUTE_NODE_STATUS_QPS"] = " 120.5 "
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 || cfg.NodeStatusQPS != 120.5 {
			t.Fatalf("%v %v", cfg.NodeStatusQPS, problems)
		}
		var b bytes.Buffer
		Describe(&b, cfg, FromMap(env))
		if !strings.Contains(b.String(), "node status:    120.5 condition patches/s") {
			t.Fatalf("validate-config does not show the rate:\n%s", b.String())
		}
	})
	t.Run("VMC reverse proxy URL and token", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["NSXT_MANAGER_HOST"] = "https://nsx-1-2-3-4.rp.vmwarevmc.com/vmc/reverse-proxy/api/orgs/org-1/sddcs/sddc-1/sks-nsxt-manager"
		env["NSXT_VMC_AUTH_HOST"] = "console.cloud.vmware.com"
		env["NSXT_VMC_ACCESS_TOKEN"] = "token"
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 || cfg.Auth.Mode != AuthVMCToken || !strings.HasSuffix(cfg.ManagerURL, "/sks-nsxt-manager") || cfg.Auth.VMCAuthHost != "console.cloud.vmware.com" {
			t.Fatalf("%+v %v", cfg, problems)
		}
	})
	t.Run("dual-stack", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["CLUSTER_CIDR"] = "100.96.0.0/11, fd00:100:96::/48"
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 || len(cfg.ClusterCIDRs) != 2 {
			t.Fatalf("%+v %v", cfg.ClusterCIDRs, problems)
		}
	})
	t.Run("precedence: certificate over everything", func(t *testing.T) {
		env := configtest.ValidEnv()
		env["NSXT_CLIENT_CERT_DATA"] = string(pki.CertPEM)            // PEM as is
		env["NSXT_CLIENT_CERT_KEY_DATA"] = configtest.B64(pki.KeyPEM) // base64 of PEM
		env["NSXT_VMC_AUTH_HOST"], env["NSXT_VMC_ACCESS_TOKEN"] = "console.cloud.vmware.com", "t"
		env["NSXT_SECRET_NAMESPACE"], env["NSXT_SECRET_NAME"] = "t1route", "nsx"
		cfg, problems := Load(FromMap(env))
		if len(problems) > 0 || cfg.Auth.Mode != AuthClientCert || len(cfg.Notes) == 0 || !strings.Contains(cfg.Notes[0], "NSXT_PASSWORD") {
			t.Fatalf("mode %s notes %v problems %v", cfg.Auth.Mode, cfg.Notes, problems)
		}
		delete(env, "NSXT_CLIENT_CERT_DATA")
		delete(env, "NSXT_CLIENT_CERT_KEY_DATA")
		if cfg, _ := Load(FromMap(env)); cfg.Auth.Mode != AuthVMCToken {
			t.Fatalf("without a certificate: %s", cfg.Auth.Mode)
		}
		delete(env, "NSXT_VMC_AUTH_HOST")
		delete(env, "NSXT_VMC_ACCESS_TOKEN")
		if cfg, _ := Load(FromMap(env)); cfg.Auth.Mode != AuthSecret {
			t.Fatalf("without VMC: %s", cfg.Auth.Mode)
		}
	})
	t.Run("disabled needs nothing", func(t *testing.T) {
		cfg, problems := Load(FromMap(map[string]string{"NSXT_POD_ROUTING_ENABLED": "false"}))
		if len(problems) > 0 || cfg.PodRoutingEnabled {
			t.Fatal(problems)
		}
	})
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--cluster-cidr", "100.64.0.0/16", "--router-path", "/infra/tier-1s/from-flag"}); err != nil {
		t.Fatal(err)
	}
	s := Settings{Flags: fs, Getenv: FromMap(configtest.ValidEnv()).Getenv}
	cfg, problems := Load(s)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var out bytes.Buffer
	Describe(&out, cfg, s)
	if !strings.Contains(out.String(), "cluster CIDRs:  100.64.0.0/16") || !strings.Contains(out.String(), "/infra/tier-1s/from-flag   (flag)") {
		t.Fatalf("flags did not win:\n%s", out.String())
	}
}

func TestDescribe(t *testing.T) {
	pki := configtest.NewPKI(t)
	env := configtest.ValidEnv()
	env["NSXT_CLIENT_CERT_DATA"], env["NSXT_CLIENT_CERT_KEY_DATA"] = configtest.B64(pki.CertPEM), configtest.B64(pki.KeyPEM)
	env["NSXT_ROOT_CA_DATA_B64"] = configtest.B64(pki.CAPEM)
	cfg, problems := Load(FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var b bytes.Buffer
	Describe(&b, cfg, FromMap(env))
	out := b.String()
	for _, want := range []string{"configuration is valid", "auth mode:      client-certificate, because NSXT_CLIENT_CERT_DATA and NSXT_CLIENT_CERT_KEY_DATA are set",
		"NSXT_PASSWORD               <redacted>", "NSXT_CLIENT_CERT_KEY_DATA   <redacted>", "manager CA pinned: CN=nsxsim CA"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"Very-S3cret-pw", configtest.B64(pki.KeyPEM)[:40], configtest.B64(pki.CertPEM)[:40]} {
		if strings.Contains(out, secret) {
			t.Fatalf("output shows a secret:\n%s", out)
		}
	}
}

// Secret-ness lives in the variable table alone: whatever a secret variable
// holds, Describe never shows it, and every secret is rendered with the
// credentials.
func TestSecretsFollowTheVariableTable(t *testing.T) {
	env := map[string]string{}
	for _, v := range Variables() {
		env[v.Env] = "value-of-" + v.Env
		if v.Secret && !v.Credential {
			t.Errorf("%s is secret but not a credential: render would put it in the ConfigMap", v.Env)
		}
	}
	var b bytes.Buffer
	Describe(&b, Config{}, FromMap(env))
	for _, v := range Variables() {
		if shown := strings.Contains(b.String(), "value-of-"+v.Env); shown == v.Secret {
			t.Errorf("%s (secret %v) shown: %v\n%s", v.Env, v.Secret, shown, b.String())
		}
	}
}

func TestManagementGuardSettings(t *testing.T) {
	env := configtest.ValidEnv()
	env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.5/28, 2001:db8::/64"
	env["NSXT_MANAGEMENT_ALLOWED_PODS"] = "tools:app=backup,,monitoring:team in (infra)"
	cfg, problems := Load(FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got := fmt.Sprint(cfg.Guard.CIDRs); got != "[203.0.113.0/28 2001:db8::/64]" {
		t.Errorf("CIDRs %s: want the networks, host bits cleared", got)
	}
	var allowed []string
	for _, g := range cfg.Guard.Allowed {
		allowed = append(allowed, g.String())
	}
	want := len(DefaultGuardSelectors()) + 2
	if len(allowed) != want || !strings.HasPrefix(allowed[len(allowed)-2], "tools:") || !strings.HasPrefix(allowed[len(allowed)-1], "monitoring:") {
		t.Errorf("allowed %v: want the vSphere defaults then the two given", allowed)
	}
	if plain, _ := Load(FromMap(configtest.ValidEnv())); len(plain.Guard.CIDRs) > 0 || plain.Guard.Allowed != nil {
		t.Errorf("a guard without NSXT_MANAGEMENT_CIDR: %+v", plain.Guard)
	}
}
