package nsx

import (
	"fmt"
	"strings"
)

// RouterPath is where t1route keeps its static routes: a Tier-1 in the
// default space (/infra/tier-1s/<id>), a Tier-1 inside an NSX project
// (/orgs/<org>/projects/<project>/infra/tier-1s/<id>), or an NSX VPC
// (/orgs/<org>/projects/<project>/vpcs/<vpc>). It is parsed once, from
// NSXT_ROUTER_PATH, by ParseRouterPath; every call the client makes for it
// derives its URLs from the parsed parts, never by slicing the string.
// The zero value is "no router" (IsZero).
type RouterPath struct {
	kind    RouterKind
	org     string
	project string
	id      string // the Tier-1's or the VPC's id
}

// RouterKind is the shape of a RouterPath.
type RouterKind int

// The three shapes t1route accepts.
const (
	// InfraTier1 is /infra/tier-1s/<id>.
	InfraTier1 RouterKind = iota + 1
	// ProjectTier1 is /orgs/<org>/projects/<project>/infra/tier-1s/<id>.
	ProjectTier1
	// VPC is /orgs/<org>/projects/<project>/vpcs/<vpc>.
	VPC
)

func (k RouterKind) String() string {
	switch k {
	case InfraTier1:
		return "Tier-1"
	case ProjectTier1:
		return "project Tier-1"
	case VPC:
		return "VPC"
	}
	return "none"
}

// RouterShapes names the accepted shapes, for errors and help.
const RouterShapes = "/infra/tier-1s/<id>, /orgs/<org>/projects/<project>/infra/tier-1s/<id> or /orgs/<org>/projects/<project>/vpcs/<vpc>"

// ParseRouterPath parses a router path of one of the three accepted shapes
// (RouterShapes). Every id (org, project, Tier-1, VPC) follows the rule
// stated at Tier1ID. The error says what is wrong and names the shapes.
func ParseRouterPath(s string) (RouterPath, error) {
	bad := func(why string) (RouterPath, error) {
		return RouterPath{}, fmt.Errorf("router path %q %s; the accepted shapes are %s (copy the path from the gateway's or VPC's \"Copy path\" in the NSX UI)", Sanitize(s, 80), why, RouterShapes)
	}
	if rest, ok := strings.CutPrefix(s, "/infra/tier-1s/"); ok {
		if err := checkID(rest); err != nil {
			return bad("has a bad Tier-1 id: " + err.Error())
		}
		return RouterPath{kind: InfraTier1, id: rest}, nil
	}
	rest, ok := strings.CutPrefix(s, "/orgs/")
	if !ok {
		return bad("is not of an accepted shape")
	}
	// Split on '/' to name the offending segment; ids are checked below, so
	// an id holding '/' can never shift the segments (it fails checkID).
	seg := strings.Split(rest, "/")
	if len(seg) < 3 || seg[1] != "projects" {
		return bad("is not of an accepted shape")
	}
	org, project := seg[0], seg[2]
	var p RouterPath
	switch {
	case len(seg) == 6 && seg[3] == "infra" && seg[4] == "tier-1s":
		p = RouterPath{kind: ProjectTier1, org: org, project: project, id: seg[5]}
	case len(seg) == 5 && seg[3] == "vpcs":
		p = RouterPath{kind: VPC, org: org, project: project, id: seg[4]}
	default:
		return bad("is not of an accepted shape")
	}
	for _, part := range []struct{ what, id string }{{"org", p.org}, {"project", p.project}, {p.kind.idNoun(), p.id}} {
		if err := checkID(part.id); err != nil {
			return bad("has a bad " + part.what + " id: " + err.Error())
		}
	}
	return p, nil
}

func (k RouterKind) idNoun() string {
	if k == VPC {
		return "VPC"
	}
	return "Tier-1"
}

// MustRouterPath is ParseRouterPath for paths known to be good (tests,
// constants); it panics on a bad one.
func MustRouterPath(s string) RouterPath {
	p, err := ParseRouterPath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Tier1Path is the RouterPath of the Tier-1 /infra/tier-1s/<id>; the id must
// follow the rule at Tier1ID.
func Tier1Path(id string) RouterPath { return MustRouterPath("/infra/tier-1s/" + id) }

// IsZero reports whether p is the zero RouterPath (none configured).
func (p RouterPath) IsZero() bool { return p.kind == 0 }

// Kind is p's shape.
func (p RouterPath) Kind() RouterKind { return p.kind }

// IsVPC reports whether p is a VPC.
func (p RouterPath) IsVPC() bool { return p.kind == VPC }

// ID is the Tier-1's or the VPC's id.
func (p RouterPath) ID() string { return p.id }

// Org and Project are the org and project of a path inside a project ("" for /infra).
func (p RouterPath) Org() string     { return p.org }
func (p RouterPath) Project() string { return p.project }

// ProjectPath is the policy path of p's project, /orgs/<org>/projects/<p> ("" for /infra).
func (p RouterPath) ProjectPath() string {
	if p.project == "" {
		return ""
	}
	return "/orgs/" + p.org + "/projects/" + p.project
}

// String is the policy path, as NSX shows it.
func (p RouterPath) String() string {
	switch p.kind {
	case InfraTier1:
		return "/infra/tier-1s/" + p.id
	case ProjectTier1:
		return p.ProjectPath() + "/infra/tier-1s/" + p.id
	case VPC:
		return p.ProjectPath() + "/vpcs/" + p.id
	}
	return ""
}

// MarshalText makes a RouterPath print as its path in JSON and YAML.
func (p RouterPath) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// apiPath is the URL path of p in the Policy API.
func (p RouterPath) apiPath() string { return policyAPI + p.String() }

// RoutePath is the policy path of p's static route id.
func (p RouterPath) RoutePath(id string) string { return p.String() + "/static-routes/" + id }

// hierarchicalPath is where p's routes are patched in one call: /infra for
// the default space, the project's infra for a project Tier-1 (the SDK's
// orgs/projects InfraClient), and the org root for a VPC (the SDK's
// OrgRootClient; a VPC is not under its project's infra, and PATCH on the
// VPC itself would be a write of the VPC object, which t1route does not own).
func (p RouterPath) hierarchicalPath() string {
	switch p.kind {
	case ProjectTier1:
		return policyAPI + p.ProjectPath() + "/infra"
	case VPC:
		return policyAPI + "/org-root"
	}
	return policyAPI + "/infra"
}

// checked returns an error for the zero RouterPath, which no call can use.
func (p RouterPath) checked() error {
	if p.kind == 0 {
		return fmt.Errorf("no router path given: set NSXT_ROUTER_PATH to %s", RouterShapes)
	}
	return nil
}

const policyAPI = "/policy/api/v1"
