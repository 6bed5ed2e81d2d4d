package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config/configtest"
)

// NSXT_VMC_AUTH_HOST is a host and nothing more: a query, fragment, user
// info or path is refused, naming which, and never quoted (it may hold the
// refresh token or a password).
func TestVMCAuthHostIsOnlyAHost(t *testing.T) {
	cases := []struct{ name, host, want string }{
		{"a refresh token in the query", "console.cloud.vmware.com?refresh_token=Url-S3cret", "has a query or fragment (not shown"},
		{"a query after a URL", "https://console.cloud.vmware.com/?refresh_token=Url-S3cret", "has a query or fragment (not shown"},
		{"an empty query", "console.cloud.vmware.com?", "has a query or fragment"},
		{"a fragment", "console.cloud.vmware.com#Url-S3cret", "has a query or fragment"},
		{"user info", "https://admin:Url-S3cret@console.cloud.vmware.com", "holds user info"},
		{"user info without a scheme", "Url-S3cret@console.cloud.vmware.com", "holds user info"},
		{"a path", "console.cloud.vmware.com/csp/gateway/Url-S3cret", "has a path after the host console.cloud.vmware.com"},
		{"not a host name", "console_cloud!.vmware", "not a valid host name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := configtest.ValidEnv()
			env["NSXT_VMC_AUTH_HOST"], env["NSXT_VMC_ACCESS_TOKEN"] = tc.host, "Vmc-S3cret-token"
			_, problems := Load(FromMap(env))
			var all []string
			found := false
			for _, p := range problems {
				all = append(all, p.String())
				found = found || p.Var == "NSXT_VMC_AUTH_HOST" && strings.Contains(p.What, tc.want)
			}
			text := strings.Join(all, "\n")
			if !found {
				t.Fatalf("want a problem of NSXT_VMC_AUTH_HOST containing %q; got %q", tc.want, text)
			}
			for _, secret := range []string{"Url-S3cret", "Vmc-S3cret-token", "refresh_token"} {
				if strings.Contains(text, secret) {
					t.Fatalf("a problem quotes %q: %s", secret, text)
				}
			}
		})
	}
	env := configtest.ValidEnv()
	env["NSXT_VMC_AUTH_HOST"], env["NSXT_VMC_ACCESS_TOKEN"] = "https://console.cloud.vmware.com:443/", "t"
	if cfg, problems := Load(FromMap(env)); len(problems) > 0 || cfg.Auth.VMCAuthHost != "console.cloud.vmware.com:443" {
		t.Fatalf("a plain host URL is refused: %v %q", problems, cfg.Auth.VMCAuthHost)
	}
}

// validate-config says what NSXT_ALLOW_UNVERIFIED_SSL covers: the manager,
// never the VMC token service, which gets the API token.
func TestDescribeSaysWhatUnverifiedSSLCovers(t *testing.T) {
	env := configtest.ValidEnv()
	delete(env, "NSXT_USERNAME")
	delete(env, "NSXT_PASSWORD")
	env["NSXT_VMC_AUTH_HOST"], env["NSXT_VMC_ACCESS_TOKEN"] = "console.cloud.vmware.com", "Vmc-S3cret-token"
	env["NSXT_ALLOW_UNVERIFIED_SSL"] = "true"
	cfg, problems := Load(FromMap(env))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var b bytes.Buffer
	Describe(&b, cfg, FromMap(env))
	out := b.String()
	for _, want := range []string{"WARNING: the NSX Manager's certificate is NOT verified",
		"token service:  https://console.cloud.vmware.com, certificate always verified",
		"it covers the manager only: the VMC token service (NSXT_VMC_AUTH_HOST) is always verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Vmc-S3cret-token") {
		t.Fatalf("validate-config shows the token:\n%s", out)
	}
}

// Describe never shows a host value's user info, query or fragment.
func TestHideURLSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"nsx.example.com":                          "nsx.example.com",
		"https://nsx.example.com/api":              "https://nsx.example.com/api",
		"host.example?refresh_token=S3cret":        "host.example (user info, query or fragment not shown)",
		"https://u:S3cret@host.example/p?x=S3cret": "https://host.example/p (user info, query or fragment not shown)",
		"host.example#S3cret":                      "host.example (user info, query or fragment not shown)",
	} {
		if got := hideURLSecrets(in); got != want {
			t.Errorf("hideURLSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}
