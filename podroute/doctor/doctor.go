// Package doctor is t1route's preflight: each check of what t1route needs
// (configuration, manager, TLS, credentials, NSX version and cluster, the
// Tier-1 and its advertisement, CIDRs, Kubernetes, RBAC) returns a result
// with a fix; the command prints them.
package doctor

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/config"
)

// Level is how a check came out.
type Level string

// Levels; any FAIL makes the preflight fail.
const (
	Pass Level = "PASS"
	Warn Level = "WARN"
	Fail Level = "FAIL"
	Skip Level = "SKIP" // not checked, because what it needs failed
)

// Result is one check's outcome: what was checked, what was found and, for
// anything but a pass, how to fix it.
type Result struct {
	Level   Level
	Check   string
	Message string
	Fix     string
}

// ManagementPlane is what doctor reads through NSX's Management Plane API;
// *nsx.Client is one.
type ManagementPlane interface {
	// ManagerStatus is the manager's version and cluster status. Refused
	// credentials are an *nsx.APIError with status 401 or 403.
	ManagerStatus(ctx context.Context) (nsx.ManagerStatus, error)
}

// Options are what the checks look at.
type Options struct {
	Config   config.Config
	Problems []config.Problem // from config.Load
	// Kube is the cluster's client; KubeErr why there is none.
	Kube    kubernetes.Interface
	KubeErr error
	// ServiceCIDRs are the cluster's service ranges, comma-separated ("":
	// read from the cluster's ServiceCIDRs).
	ServiceCIDRs string
	// LeaseNamespace is where the controller's Lease lives.
	LeaseNamespace string
	// ManagementPlane reads the manager over a connected NSX client
	// (default: the client itself).
	ManagementPlane func(*nsx.Client) ManagementPlane
	UserAgent       string
	Log             *zap.Logger // NSX and credential warnings (nil: none)
}

// minNSXVersion is the oldest NSX whose Policy API t1route is built for
// (hierarchical API with static route children, TIER1_STATIC_ROUTES).
const minNSXVersion = "3.0"

// Limits of doctor's own NSX calls: few, not retried for long, and not at
// all when the manager cannot be reached.
var nsxLimits = nsx.Limits{RateLimit: 20, MaxInFlight: 4, MaxRetries: 1, FailFast: true}

// credentialsWait bounds the wait for credentials from a Secret.
const credentialsWait = 15 * time.Second

// checker accumulates results.
type checker struct {
	o       Options
	results []Result
}

func (c *checker) add(level Level, check, msg, fix string) {
	c.results = append(c.results, Result{Level: level, Check: check, Message: msg, Fix: fix})
}

// Run runs every check that applies, in order, until ctx ends. A check
// whose prerequisite failed is a Skip.
func Run(ctx context.Context, o Options) []Result {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.ManagementPlane == nil {
		o.ManagementPlane = func(c *nsx.Client) ManagementPlane { return c }
	}
	c := &checker{o: o}
	if !c.configuration() {
		return c.results
	}
	kube := c.kubernetes(ctx)
	if c.manager(ctx) {
		c.nsx(ctx, kube)
	} else {
		for _, check := range append([]string{"credentials", "manager version", "manager cluster"}, routerChecks(o.Config.RouterPath)...) {
			c.add(Skip, check, "not checked: the manager is not reachable", "")
		}
	}
	c.cidrs(ctx, kube)
	if kube != nil {
		c.rbac(ctx, kube)
	} else {
		c.add(Skip, "rbac", "not checked: Kubernetes is not reachable", "")
	}
	return c.results
}

// Failed reports whether any result is a Fail.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Level == Fail {
			return true
		}
	}
	return false
}
