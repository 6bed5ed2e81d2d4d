package doctor

import (
	"context"
	"fmt"

	"github.com/t1route/t1route/nsx"
)

// RouterReader is what the router checks read from NSX; *nsx.Client is one.
type RouterReader interface {
	// Tier1 reads a Tier-1 (default space or project).
	Tier1(ctx context.Context, p nsx.RouterPath) (nsx.Tier1, error)
	// Project reads the project of a path inside one.
	Project(ctx context.Context, p nsx.RouterPath) (nsx.Project, error)
	// VPC reads a VPC and how it connects to the outside.
	VPC(ctx context.Context, p nsx.RouterPath) (nsx.VPCInfo, error)
	// ListRoutes lists the router's static routes (every page).
	ListRoutes(ctx context.Context, p nsx.RouterPath) ([]nsx.Route, error)
}

// router: the project (for a path inside one) exists and the caller's role
// reaches it; the Tier-1 or VPC exists and its routes can be read; and the
// router lets static routes out: a Tier-1 advertises TIER1_STATIC_ROUTES, a
// VPC has a gateway connection.
func (c *checker) router(ctx context.Context, r RouterReader) {
	p := c.o.Config.RouterPath
	if p.Project() != "" {
		proj, err := r.Project(ctx, p)
		switch {
		case nsx.IsNotFound(err):
			c.add(Fail, "project", p.ProjectPath()+" does not exist", "create the project in NSX, or correct the org and project in NSXT_ROUTER_PATH")
			return
		case nsx.IsNotAuthorized(err):
			c.add(Fail, "project", "this user's role does not reach "+p.ProjectPath()+" ("+nsx.Explain(err)+")",
				"give the user a role on the project (e.g. Project Admin), or use credentials that have one")
			return
		case err != nil:
			c.add(Fail, "project", nsx.Explain(err), "")
			return
		}
		c.add(Pass, "project", fmt.Sprintf("%s (%s)", p.ProjectPath(), proj.DisplayName), "")
	}
	if p.IsVPC() {
		c.vpc(ctx, r, p)
	} else {
		c.tier1(ctx, r, p)
	}
	if c.failedAny("project", "Tier-1", "VPC") {
		return
	}
	// The controller lists the routes every pass: a role that reads the
	// gateway but not its routes fails there.
	if _, err := r.ListRoutes(ctx, p); err != nil {
		c.add(Fail, "static routes", "cannot list the static routes of "+p.String()+": "+nsx.Explain(err), "give the user a role that reads and writes static routes on it")
		return
	}
	c.add(Pass, "static routes", "readable on "+p.String(), "")
}

func (c *checker) tier1(ctx context.Context, r RouterReader, p nsx.RouterPath) {
	t1, err := r.Tier1(ctx, p)
	switch {
	case nsx.IsNotFound(err):
		fix := "create a dedicated Tier-1 gateway connected to your Tier-0 and set NSXT_ROUTER_PATH=/infra/tier-1s/<its id>"
		if p.Kind() == nsx.ProjectTier1 {
			fix = "create a dedicated Tier-1 gateway in project " + p.Project() + ", connected to a Tier-0 the project may use, and set NSXT_ROUTER_PATH=" + p.ProjectPath() + "/infra/tier-1s/<its id>"
		}
		c.add(Fail, "Tier-1", p.String()+" does not exist", fix)
		return
	case nsx.IsNotAuthorized(err):
		c.add(Fail, "Tier-1", "this user's role does not reach "+p.String()+" ("+nsx.Explain(err)+")", "give the user a role that covers the Tier-1")
		return
	case err != nil:
		c.add(Fail, "Tier-1", nsx.Explain(err), "")
		return
	}
	c.add(Pass, "Tier-1", fmt.Sprintf("%s (%s)", t1.Path, t1.DisplayName), "")
	if t1.AdvertisesStaticRoutes() {
		c.add(Pass, "route advertisement", "TIER1_STATIC_ROUTES is advertised to the Tier-0", "")
	} else {
		c.add(Fail, "route advertisement", fmt.Sprintf("the Tier-1 advertises %v, not TIER1_STATIC_ROUTES: pod routes never reach the Tier-0", t1.RouteAdvertisementTypes),
			"in NSX: Tier-1 Gateways > "+t1.ID+" > Route Advertisement > enable All Static Routes")
	}
}

func (c *checker) vpc(ctx context.Context, r RouterReader, p nsx.RouterPath) {
	v, err := r.VPC(ctx, p)
	switch {
	case nsx.IsNotFound(err):
		c.add(Fail, "VPC", p.String()+" does not exist", "create the VPC in project "+p.Project()+", or correct NSXT_ROUTER_PATH")
		return
	case nsx.IsNotAuthorized(err):
		c.add(Fail, "VPC", "this user's role does not reach "+p.String()+" ("+nsx.Explain(err)+")", "give the user a role on the VPC or its project (e.g. VPC Admin or Project Admin)")
		return
	case err != nil:
		c.add(Fail, "VPC", nsx.Explain(err), "")
		return
	}
	c.add(Pass, "VPC", fmt.Sprintf("%s (%s)", v.Path, v.DisplayName), "")
	switch {
	case v.DefaultGatewayPath != "":
		c.add(Pass, "VPC connectivity", "default gateway "+v.DefaultGatewayPath, "")
	case len(v.ConnectivityProfiles) > 0:
		c.add(Pass, "VPC connectivity", fmt.Sprintf("connectivity profile %v", v.ConnectivityProfiles), "")
	default:
		c.add(Fail, "VPC connectivity", "the VPC has no default gateway and no attachment with a connectivity profile: its static routes reach nothing outside it",
			"in NSX: connect the VPC (its connectivity profile, or its default gateway on NSX 4.1) to the project's Tier-0 or transit gateway")
	}
}

// failedAny reports whether one of the named checks failed.
func (c *checker) failedAny(checks ...string) bool {
	for _, r := range c.results {
		for _, name := range checks {
			if r.Check == name && r.Level == Fail {
				return true
			}
		}
	}
	return false
}

// routerChecks are the names of the router checks of a path's shape, in order.
func routerChecks(p nsx.RouterPath) []string {
	var out []string
	if p.Project() != "" {
		out = append(out, "project")
	}
	if p.IsVPC() {
		out = append(out, "VPC", "VPC connectivity")
	} else {
		out = append(out, "Tier-1", "route advertisement")
	}
	return append(out, "static routes")
}
