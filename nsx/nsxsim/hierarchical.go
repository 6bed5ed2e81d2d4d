package nsxsim

import (
	"fmt"
	"net/http"
	"time"
)

// hNode is one object of a hierarchical API body: the Infra root, a
// ChildResourceReference, a ChildTier1 or a ChildStaticRoutes wrapper.
type hNode struct {
	ResourceType    string       `json:"resource_type"`
	ID              string       `json:"id"`
	TargetType      string       `json:"target_type"`
	MarkedForDelete bool         `json:"marked_for_delete"`
	Children        []hNode      `json:"children"`
	StaticRoutes    *routeInput  `json:"StaticRoutes"`
	Tier1           *hTier1Input `json:"Tier1"`
}

type hTier1Input struct {
	tier1Input
	Children []hNode `json:"children"`
}

// hOp is one validated change of a hierarchical call.
type hOp struct {
	where  string
	t1     string      // the router's policy path (a Tier-1's or a VPC's)
	tier1  *tier1Input // upsert of the Tier-1 itself
	route  StaticRoute // upsert when !delete and tier1 == nil
	rev    *int64
	delete bool
}

// patchInfra applies a hierarchical PATCH of /infra, or of a project's
// infra (/orgs/<org>/projects/<p>/infra: the same body, its Tier-1s in the
// project).
func (s *Simulator) patchInfra(w http.ResponseWriter, r *http.Request) {
	var root hNode
	if !decodeBody(w, r, &root) {
		return
	}
	if root.ResourceType != "" && root.ResourceType != "Infra" {
		invalid(w, fmt.Sprintf("resource_type %q: the body of PATCH /infra must be an Infra object.", root.ResourceType))
		return
	}
	project := projectOfRequest(r)
	if project != "" {
		s.store.mu.RLock()
		_, ok := s.store.projects[project]
		s.store.mu.RUnlock()
		if !ok {
			notFound(w, project)
			return
		}
	}
	var ops []hOp
	var bad []apiErrorBody
	for i, c := range root.Children {
		ops, bad = collectTier1Child(fmt.Sprintf("children[%d]", i), project, c, ops, bad)
	}
	s.applyHierarchical(w, r, ops, bad)
}

// applyHierarchical applies the changes of a hierarchical call atomically:
// every child is checked first, and one bad child rejects the whole call,
// naming it, with nothing changed.
func (s *Simulator) applyHierarchical(w http.ResponseWriter, r *http.Request, ops []hOp, bad []apiErrorBody) {
	if len(bad) > 0 {
		invalid(w, fmt.Sprintf("Field level validation errors: %d of the children are not valid; nothing was changed. First: %s", len(bad), bad[0].ErrorMessage), bad...)
		return
	}
	if s.opts.LatencyPerChild > 0 && !sleepCtx(r.Context(), s.opts.LatencyPerChild*time.Duration(len(ops))) {
		return
	}
	enforce := r.URL.Query().Get("enforce_revision_check") == "true"

	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	// Check everything against the current state before changing anything.
	c := callerFrom(r)
	known := map[string]bool{}
	var refused []apiErrorBody // children a protected principal identity owns
	for _, op := range ops {
		t, ok := s.store.router(op.t1)
		if op.tier1 != nil {
			known[op.t1] = true
			if ok {
				if e := mayChange(c, &t.meta, "Tier1"); e != nil {
					refused = append(refused, apiErrorBody{ErrorCode: e.code, ModuleName: "common-services", ErrorMessage: op.where + ": " + e.msg})
				}
			}
			continue
		}
		if !ok && !known[op.t1] {
			writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s: the path=[%s] is invalid; nothing was changed.", op.where, op.t1))
			return
		}
		if !ok {
			continue // created by this call: nothing of it exists yet
		}
		if cur, exists := t.routes[op.route.ID]; exists {
			if e := mayChange(c, &cur.meta, "StaticRoutes"); e != nil {
				refused = append(refused, apiErrorBody{ErrorCode: e.code, ModuleName: "common-services", ErrorMessage: op.where + ": " + e.msg})
				continue
			}
		}
		if enforce && !op.delete {
			if e := revisionConflict(t, op.route.ID, op.rev, false); e != nil {
				writeError(w, e.status, e.code, op.where+": "+e.msg+" Nothing was changed.")
				return
			}
		}
	}
	if len(refused) > 0 {
		// Atomic, as NSX: one protected child refuses the whole call.
		writeError(w, http.StatusBadRequest, CodeProtected, fmt.Sprintf("%d of the children are owned by a protected principal identity; nothing was changed. First: %s",
			len(refused), refused[0].ErrorMessage), refused...)
		return
	}
	writes := 0
	for _, op := range ops {
		switch {
		case op.tier1 != nil:
			if _, err := s.store.putRouter(op.t1, *op.tier1, c); err != nil {
				// Validated above; this cannot happen without a simulator bug.
				panic(fmt.Sprintf("nsxsim: tier-1 %s failed after validation: %v", op.t1, err))
			}
		case op.delete:
			t, _ := s.store.router(op.t1)
			if s.store.deleteRoute(t, op.route.ID) { // deleting an absent route is a no-op, as in NSX
				writes++
			}
		default:
			t, _ := s.store.router(op.t1)
			s.store.putRoute(t, op.route, c)
			writes++
		}
	}
	s.stats.addWrites(writes)
	s.stats.addHierarchical()
	w.WriteHeader(http.StatusOK)
}

// collectTier1Child reads a child of Infra (of the default space, or of
// project): a reference to a Tier-1 or a ChildTier1 carrying one.
func collectTier1Child(where, project string, c hNode, ops []hOp, bad []apiErrorBody) ([]hOp, []apiErrorBody) {
	fail := func(msg string) {
		bad = append(bad, apiErrorBody{ErrorCode: CodeInvalid, ErrorMessage: where + ": " + msg})
	}
	var t1 string
	var children []hNode
	switch c.ResourceType {
	case "ChildResourceReference":
		if c.TargetType != "Tier1" {
			fail(fmt.Sprintf("target_type %q is not supported here (want Tier1)", c.TargetType))
			return ops, bad
		}
		if err := validID(c.ID); err != nil {
			fail(err.Error())
			return ops, bad
		}
		t1, children = c.ID, c.Children
	case "ChildTier1":
		if c.Tier1 == nil || c.Tier1.ID == nil {
			fail("ChildTier1 needs a Tier1 object with an id")
			return ops, bad
		}
		if c.MarkedForDelete {
			fail("deleting a Tier-1 through the hierarchical API is not supported by nsxsim")
			return ops, bad
		}
		t1, children = *c.Tier1.ID, c.Tier1.Children
		if err := validID(t1); err != nil {
			fail(err.Error())
			return ops, bad
		}
		for _, typ := range c.Tier1.RouteAdvertisementTypes {
			if !validAdvertisementType[typ] {
				fail(fmt.Sprintf("route_advertisement_types: %q is not a valid value", typ))
				return ops, bad
			}
		}
		if err := validTags(c.Tier1.Tags); err != nil {
			fail(err.Error())
			return ops, bad
		}
		in := c.Tier1.tier1Input
		ops = append(ops, hOp{where: where, t1: project + tier1sPath + t1, tier1: &in})
	default:
		fail(fmt.Sprintf("resource_type %q is not supported under Infra (want ChildResourceReference or ChildTier1)", c.ResourceType))
		return ops, bad
	}
	for j, rc := range children {
		ops, bad = collectRouteChild(fmt.Sprintf("%s.children[%d]", where, j), project+tier1sPath+t1, rc, ops, bad)
	}
	return ops, bad
}

func collectRouteChild(where, t1 string, c hNode, ops []hOp, bad []apiErrorBody) ([]hOp, []apiErrorBody) {
	fail := func(msg string) {
		bad = append(bad, apiErrorBody{ErrorCode: CodeInvalid, ErrorMessage: where + ": " + msg})
	}
	if c.ResourceType != "ChildStaticRoutes" {
		fail(fmt.Sprintf("resource_type %q is not supported under a Tier-1 (want ChildStaticRoutes)", c.ResourceType))
		return ops, bad
	}
	if c.StaticRoutes == nil || c.StaticRoutes.ID == nil {
		fail("ChildStaticRoutes needs a StaticRoutes object with an id")
		return ops, bad
	}
	in := *c.StaticRoutes
	id := *in.ID
	where = fmt.Sprintf("%s (StaticRoutes id=%s)", where, id)
	if c.MarkedForDelete || (in.MarkedForDelete != nil && *in.MarkedForDelete) {
		if err := validID(id); err != nil {
			fail(err.Error())
			return ops, bad
		}
		return append(ops, hOp{where: where, t1: t1, route: StaticRoute{ID: id}, delete: true}), bad
	}
	route, err := buildRoute(id, in)
	if err != nil {
		bad = append(bad, apiErrorBody{ErrorCode: CodeInvalid, ErrorMessage: where + ": " + err.Error()})
		return ops, bad
	}
	return append(ops, hOp{where: where, t1: t1, route: route, rev: in.Revision}), bad
}
