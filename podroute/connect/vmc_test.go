package connect

import (
	"context"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute/config"
)

// NSXT_ALLOW_UNVERIFIED_SSL lifts verification of the manager only: the VMC
// token service, which gets the long-lived API token, is always verified,
// so a service whose certificate is not trusted never receives the token.
func TestUnverifiedSSLStillVerifiesTheTokenService(t *testing.T) {
	const apiToken = "vmc-API-token-S3cret"
	sim := nsxsim.StartTest(t, nsxsim.Options{RefreshTokens: map[string]string{apiToken: "admin"}})
	cfg, problems := config.Load(config.FromMap(map[string]string{
		"NSXT_POD_ROUTING_ENABLED": "true", "NSXT_MANAGER_HOST": sim.URL(), "NSXT_ROUTER_PATH": "/infra/tier-1s/t1-routable",
		"CLUSTER_CIDR": "100.96.0.0/11", "NSXT_VMC_AUTH_HOST": sim.Addr(), "NSXT_VMC_ACCESS_TOKEN": apiToken, "NSXT_ALLOW_UNVERIFIED_SSL": "true",
	}))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	conn, err := NSX(context.Background(), cfg, nil, Options{Limits: nsx.Limits{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Client.Tier1(context.Background(), cfg.RouterPath)
	if err == nil {
		t.Fatal("the API token was exchanged with a token service whose certificate is not trusted")
	}
	if got := sim.Stats().TokenExchanges; got != 0 {
		t.Fatalf("%d token exchanges: the token service got the API token", got)
	}
	if why := nsx.Explain(err); !strings.Contains(why, "certificate is not trusted") || strings.Contains(why, apiToken) {
		t.Fatalf("the error does not say the token service's certificate is not trusted: %s", why)
	}
}
