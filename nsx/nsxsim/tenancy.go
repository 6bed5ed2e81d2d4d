package nsxsim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// NSX multi-tenancy (NSX 4.1 and later): projects under an org, each with
// its own policy tree (/orgs/<org>/projects/<p>/infra, holding Tier-1s) and
// VPCs (/orgs/<org>/projects/<p>/vpcs/<vpc>), both with static routes of the
// same model as a default-space Tier-1's. The simulator keeps every router
// (Tier-1 or VPC) in one registry keyed by its policy path, so routes,
// protection, realization, forwarding and the netns realizer work the same
// on each; this file holds what differs: paths, projects, VPC objects, the
// org-root hierarchical call, and users whose role is scoped to a project.

// routerRef is a router's policy path, parsed.
type routerRef struct {
	path    string // the router's policy path
	parent  string // its parent_path: /infra, <project>/infra, or <project> for a VPC
	project string // /orgs/<org>/projects/<p>, "" in the default space
	id      string
	vpc     bool
}

// parseRouter parses the policy path of a Tier-1 (default space or
// project) or of a VPC.
func parseRouter(p string) (routerRef, error) {
	if id, ok := strings.CutPrefix(p, tier1sPath); ok {
		if err := validID(id); err != nil {
			return routerRef{}, err
		}
		return routerRef{path: p, parent: "/infra", id: id}, nil
	}
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/orgs/") || len(seg) < 5 || seg[2] != "projects" {
		return routerRef{}, fmt.Errorf("%q is not the path of a Tier-1 or VPC", p)
	}
	project := "/orgs/" + seg[1] + "/projects/" + seg[3]
	var ref routerRef
	switch {
	case len(seg) == 7 && seg[4] == "infra" && seg[5] == "tier-1s":
		ref = routerRef{path: p, parent: project + "/infra", project: project, id: seg[6]}
	case len(seg) == 6 && seg[4] == "vpcs":
		ref = routerRef{path: p, parent: project, project: project, id: seg[5], vpc: true}
	default:
		return routerRef{}, fmt.Errorf("%q is not the path of a Tier-1 or VPC", p)
	}
	for _, id := range []string{seg[1], seg[3], ref.id} {
		if err := validID(id); err != nil {
			return routerRef{}, err
		}
	}
	return ref, nil
}

// routerKey is the registry key of a router named by the test API: a policy
// path as given, or a bare id for a default-space Tier-1.
func routerKey(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return tier1sPath + name
}

// splitIntent splits a policy path into the router it belongs to and the
// rest ("" for the router itself, "static-routes/<id>" for a route).
func splitIntent(intent string) (router, rest string, ok bool) {
	if after, found := strings.CutPrefix(intent, tier1sPath); found {
		id, rest, _ := strings.Cut(after, "/")
		return tier1sPath + id, rest, id != ""
	}
	seg := strings.SplitN(strings.TrimPrefix(intent, "/"), "/", 8)
	switch {
	case len(seg) >= 7 && seg[0] == "orgs" && seg[2] == "projects" && seg[4] == "infra" && seg[5] == "tier-1s":
		router = "/" + strings.Join(seg[:7], "/")
		if len(seg) == 8 {
			rest = seg[7]
		}
		return router, rest, true
	case len(seg) >= 6 && seg[0] == "orgs" && seg[2] == "projects" && seg[4] == "vpcs":
		router = "/" + strings.Join(seg[:6], "/")
		rest = strings.Join(seg[6:], "/")
		return router, rest, true
	}
	return "", "", false
}

// routerOf is the router a request's URL names (its {org}, {project}, {t1}
// or {vpc} path values).
func routerOf(r *http.Request) string {
	if project := r.PathValue("project"); project != "" {
		base := "/orgs/" + r.PathValue("org") + "/projects/" + project
		if vpc := r.PathValue("vpc"); vpc != "" {
			return base + "/vpcs/" + vpc
		}
		return base + "/infra/tier-1s/" + r.PathValue("t1")
	}
	return tier1sPath + r.PathValue("t1")
}

// projectOfRequest is the project a request's URL is under ("" for none).
func projectOfRequest(r *http.Request) string {
	if project := r.PathValue("project"); project != "" {
		return "/orgs/" + r.PathValue("org") + "/projects/" + project
	}
	return ""
}

// Project is NSX's Project object, reduced to what t1route reads.
type Project struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name,omitempty"`
	Tier0s      []string `json:"tier_0s"`
	meta
}

// VPC is NSX's Vpc object (NSX 4.1's model), reduced to what t1route reads.
type VPC struct {
	ID                 string `json:"id"`
	DisplayName        string `json:"display_name,omitempty"`
	DefaultGatewayPath string `json:"default_gateway_path,omitempty"`
	meta
}

// defaultTier0 is the Tier-0 the simulator's projects may use and its VPCs
// connect to.
const defaultTier0 = "/infra/tier-0s/t0"

// ensureProject creates a project if it does not exist. Caller holds the write lock.
func (s *store) ensureProject(path string, by caller) {
	if _, ok := s.projects[path]; ok {
		return
	}
	id := path[strings.LastIndex(path, "/")+1:]
	org := strings.TrimSuffix(path, "/projects/"+id)
	now := s.now().UnixMilli()
	p := &Project{ID: id, DisplayName: id, Tier0s: []string{defaultTier0}}
	p.meta = meta{ResourceType: "Project", Path: path, ParentPath: org, RelativePath: id, UniqueID: newUUID(),
		CreateTime: now, CreateUser: by.name, LastModifiedTime: now, LastModifiedUser: by.name}
	s.projects[path] = p
}

// putRouter creates (or patches) any router: a Tier-1 as putTier1 does, or
// a VPC, connected to defaultTier0. Its project must exist. Caller holds the
// write lock.
func (s *store) putRouter(path string, in tier1Input, by caller) (*tier1State, error) {
	ref, err := parseRouter(path)
	if err != nil {
		return nil, err
	}
	if ref.project != "" {
		if _, ok := s.projects[ref.project]; !ok {
			return nil, fmt.Errorf("the project path=[%s] is invalid", ref.project)
		}
	}
	if !ref.vpc {
		return s.putTier1(ref, in, by)
	}
	t, ok := s.routers[path]
	if !ok {
		now := s.now().UnixMilli()
		t = &tier1State{routes: map[string]*StaticRoute{}, vpc: true, defaultGateway: defaultTier0}
		t.ID, t.DisplayName = ref.id, ref.id
		t.meta = meta{ResourceType: "Vpc", Path: path, ParentPath: ref.parent, RelativePath: ref.id, UniqueID: newUUID(),
			CreateTime: now, CreateUser: by.name, LastModifiedTime: now, LastModifiedUser: by.name}
		markCreated(by, &t.meta)
		s.routers[path] = t
	}
	return t, nil
}

// vpcObject is a VPC as GET answers it.
func (t *tier1State) vpcObject() VPC {
	return VPC{ID: t.ID, DisplayName: t.DisplayName, DefaultGatewayPath: t.defaultGateway, meta: t.meta}
}

func (s *Simulator) getProject(w http.ResponseWriter, r *http.Request) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	p, ok := s.store.projects[projectOfRequest(r)]
	if !ok {
		notFound(w, projectOfRequest(r))
		return
	}
	writeJSON(w, http.StatusOK, *p)
}

func (s *Simulator) getVPC(w http.ResponseWriter, r *http.Request) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(routerOf(r))
	if !ok {
		notFound(w, routerOf(r))
		return
	}
	v := t.vpcObject()
	v.Protection = protectionFor(callerFrom(r), &v.meta)
	writeJSON(w, http.StatusOK, v)
}

func (s *Simulator) listVPCs(w http.ResponseWriter, r *http.Request) {
	project := projectOfRequest(r)
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if _, ok := s.store.projects[project]; !ok {
		notFound(w, project)
		return
	}
	out := listResult[VPC]{Results: []VPC{}, SortBy: "id", SortAscending: true}
	for _, t := range s.store.routers {
		if t.vpc && t.ParentPath == project {
			out.Results = append(out.Results, t.vpcObject())
		}
	}
	sort.Slice(out.Results, func(i, j int) bool { return out.Results[i].ID < out.Results[j].ID })
	out.ResultCount = int64(len(out.Results))
	writeJSON(w, http.StatusOK, out)
}

// notAuthorized is NSX's answer to a caller whose role does not allow the
// request: HTTP 403 with error_code 401 (the manager logs it as MP401, "...
// is not authorized to access API with rbac_feature ... having
// required_permission ..."), unlike refused credentials (403, error_code 403).
func notAuthorized(w http.ResponseWriter, c caller, r *http.Request) {
	writeError(w, http.StatusForbidden, CodeNotAuthorized,
		fmt.Sprintf("User '%s' with role scoped to %s is not authorized to access API %s %s.", c.name, c.scope, r.Method, r.URL.Path))
}

// authorized reports whether a caller whose role is scoped to a project may
// make the request at all: only calls inside its project's tree, and the
// org-root hierarchical call (whose handler checks each target). Everyone
// else is unscoped (the simulator's other users are enterprise admins).
func authorized(c caller, r *http.Request) bool {
	if c.scope == "" {
		return true
	}
	p := r.URL.Path
	mine := policyPrefix + c.scope
	return p == mine || strings.HasPrefix(p, mine+"/") || (p == policyPrefix+"/org-root" && r.Method == http.MethodPatch)
}

// patchOrgRoot applies PATCH /org-root: an OrgRoot whose children reference
// an org, its projects, and their VPCs (ChildResourceReference all the way
// down), holding ChildStaticRoutes. The references change nothing; the
// routes are applied atomically as any hierarchical call.
func (s *Simulator) patchOrgRoot(w http.ResponseWriter, r *http.Request) {
	var root hNode
	if !decodeBody(w, r, &root) {
		return
	}
	if root.ResourceType != "" && root.ResourceType != "OrgRoot" {
		invalid(w, fmt.Sprintf("resource_type %q: the body of PATCH /org-root must be an OrgRoot object.", root.ResourceType))
		return
	}
	var ops []hOp
	var bad []apiErrorBody
	fail := func(where, msg string) {
		bad = append(bad, apiErrorBody{ErrorCode: CodeInvalid, ErrorMessage: where + ": " + msg})
	}
	ref := func(where string, n hNode, target string) bool {
		switch {
		case n.ResourceType != "ChildResourceReference" || n.TargetType != target:
			fail(where, fmt.Sprintf("%s/%s is not supported here by nsxsim (want a ChildResourceReference to a %s)", n.ResourceType, n.TargetType, target))
		case validID(n.ID) != nil:
			fail(where, validID(n.ID).Error())
		default:
			return true
		}
		return false
	}
	c := callerFrom(r)
	for i, org := range root.Children {
		where := fmt.Sprintf("children[%d]", i)
		if !ref(where, org, "Org") {
			continue
		}
		for j, proj := range org.Children {
			where := fmt.Sprintf("%s.children[%d]", where, j)
			if !ref(where, proj, "Project") {
				continue
			}
			project := "/orgs/" + org.ID + "/projects/" + proj.ID
			if c.scope != "" && c.scope != project {
				notAuthorized(w, c, r)
				return
			}
			for k, vpc := range proj.Children {
				where := fmt.Sprintf("%s.children[%d]", where, k)
				if !ref(where, vpc, "Vpc") {
					continue
				}
				for l, rc := range vpc.Children {
					ops, bad = collectRouteChild(fmt.Sprintf("%s.children[%d]", where, l), project+"/vpcs/"+vpc.ID, rc, ops, bad)
				}
			}
		}
	}
	s.applyHierarchical(w, r, ops, bad)
}

func tier1Paths(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tier1sPath + id
	}
	return out
}

// addRouter creates a router at start or through the test API, with its
// project: a Tier-1 advertising its static and connected routes, or a VPC.
// Caller holds the write lock (or the store is not shared yet).
func (s *store) addRouter(path string, by caller) (*tier1State, error) {
	ref, err := parseRouter(path)
	if err != nil {
		return nil, err
	}
	if ref.project != "" {
		s.ensureProject(ref.project, by)
	}
	return s.putRouter(path, tier1Input{RouteAdvertisementTypes: []string{"TIER1_STATIC_ROUTES", "TIER1_CONNECTED"}}, by)
}
