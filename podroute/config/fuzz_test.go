package config

import (
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

// FuzzLoadConfig: any value of the variables gives a valid configuration or
// problems, never a panic, and no problem ever quotes a secret.
func FuzzLoadConfig(f *testing.F) {
	f.Add("nsx.example.com", "/infra/tier-1s/t1", "100.96.0.0/11", "S3cret-password", "S3cret-token", "-----BEGIN CERTIFICATE-----\nS3cret\n")
	f.Add("https://user:S3cret@nsx:443/x?y", "t1", "100.96.0.1/11,::/0", "", "S3cret", "S3cret-not-base64!!")
	f.Add("http://[::1]:99999", "/infra/tier-1s/", "a,b,c", "S3cret pw with spaces", "", "LS0tLS1CRUdJTiBTM2NyZXQ=")
	f.Fuzz(func(t *testing.T, manager, router, cidr, password, token, certData string) {
		// Markers make a leak unmistakable: a fuzzed password such as "is not"
		// would otherwise match ordinary message text.
		password, token = "PW{"+password+"}", "TK{"+token+"}"
		env := map[string]string{"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": manager, "NSXT_ROUTER_PATH": router,
			"CLUSTER_CIDR": cidr, "NSXT_USERNAME": "admin", "NSXT_PASSWORD": password, "NSXT_VMC_AUTH_HOST": "console.cloud.vmware.com",
			"NSXT_VMC_ACCESS_TOKEN": token, "NSXT_CLIENT_CERT_DATA": certData, "NSXT_CLIENT_CERT_KEY_DATA": certData}
		cfg, problems := Load(FromMap(env))
		for _, p := range problems {
			s := p.String()
			for _, secret := range []string{password, token, certData} {
				if (strings.HasSuffix(secret, "}") || len(secret) >= 24) && strings.Contains(s, secret) {
					t.Fatalf("problem %q quotes a secret", s)
				}
			}
		}
		if len(problems) == 0 {
			if back, err := nsx.ParseRouterPath(cfg.RouterPath.String()); err != nil || back != cfg.RouterPath {
				t.Fatalf("accepted router path %q does not parse back: %v", cfg.RouterPath, err)
			}
			if !strings.HasPrefix(cfg.ManagerURL, "https://") || len(cfg.ClusterCIDRs) == 0 || cfg.Auth.Mode == "" {
				t.Fatalf("accepted an incomplete configuration: %+v", cfg)
			}
		}
	})
}
