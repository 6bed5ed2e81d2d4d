//go:build integration

package integration

import (
	"context"
	"encoding/base64"
	"sort"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
)

// SimSettings are the NSXT_* settings of an operator pointing t1route at
// sim's Tier-1 tier1: its user and password, and its CA pinned.
func SimSettings(sim *nsxsim.Simulator, tier1 string) map[string]string {
	user, pass := sim.User()
	return map[string]string{"NSXT_MANAGER_HOST": sim.Addr(), "NSXT_ROUTER_PATH": "/infra/tier-1s/" + tier1,
		"NSXT_USERNAME": user, "NSXT_PASSWORD": pass, "NSXT_ROOT_CA_DATA_B64": base64.StdEncoding.EncodeToString(sim.CACertPEM())}
}

// Environ is settings as KEY=value lines (for a t1route process), sorted.
func Environ(settings map[string]string) []string {
	out := make([]string, 0, len(settings))
	for k, v := range settings {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Connect configures t1route from settings and connects it to NSX exactly
// as its commands do (podroute/config, then podroute/connect), waiting for
// the credentials. kube is needed for credentials from a Secret, whose
// watch ends with the test.
func Connect(t TB, settings map[string]string, kube kubernetes.Interface, o connect.Options) (config.Config, *nsx.Client) {
	t.Helper()
	cfg, problems := config.Load(config.FromMap(settings))
	if len(problems) > 0 {
		t.Fatalf("configuration: %v", problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	conn, err := connect.NSX(ctx, cfg, kube, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return cfg, conn.Client
}
