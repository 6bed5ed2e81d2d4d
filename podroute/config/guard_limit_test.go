package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config/configtest"
)

// The guard's policy names are fixed in advance (the controller's RBAC
// grants exactly those): more allowed selectors than they cover are refused
// at load, naming the variable, not found out by a forbidden write later.
func TestManagementAllowedPodsLimit(t *testing.T) {
	list := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("team-%d:app=agent", i))
		}
		return strings.Join(s, ",")
	}
	most := MaxGuardSelectors - len(DefaultGuardSelectors())
	for _, n := range []int{1, most, most + 1} {
		env := configtest.ValidEnv()
		env["NSXT_MANAGEMENT_CIDR"], env["NSXT_MANAGEMENT_ALLOWED_PODS"] = "203.0.113.0/28", list(n)
		cfg, problems := Load(FromMap(env))
		if n <= most {
			if len(problems) > 0 || len(cfg.Guard.Allowed) != n+len(DefaultGuardSelectors()) {
				t.Errorf("%d selectors: %v, %d allowed", n, problems, len(cfg.Guard.Allowed))
			}
			continue
		}
		if len(problems) != 1 || !strings.Contains(problems[0].String(), "NSXT_MANAGEMENT_ALLOWED_PODS") || !strings.Contains(problems[0].String(), fmt.Sprintf("at most %d", most)) {
			t.Errorf("%d selectors: %v", n, problems)
		}
	}
}
