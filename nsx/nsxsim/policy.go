package nsxsim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

const (
	policyPrefix     = "/policy/api/v1"
	cspAuthorizePath = "/csp/gateway/am/api/auth/api-tokens/authorize"
)

// routes is the handler table: one line per API path.
func (s *Simulator) routes() {
	const project = "/orgs/{org}/projects/{project}"
	for _, space := range []string{"", project} { // the default space, and a project's
		s.handle(policyPrefix+space+"/infra", methods{"PATCH": s.patchInfra})
		s.handle(policyPrefix+space+"/infra/tier-1s", methods{"GET": s.listTier1s})
		s.handle(policyPrefix+space+"/infra/tier-1s/{t1}", methods{"GET": s.getTier1, "PATCH": s.patchTier1})
		s.handle(policyPrefix+space+"/infra/realized-state/realized-entities", methods{"GET": s.realizedEntities})
	}
	s.handle(policyPrefix+"/org-root", methods{"PATCH": s.patchOrgRoot})
	s.handle(policyPrefix+project, methods{"GET": s.getProject})
	s.handle(policyPrefix+project+"/vpcs", methods{"GET": s.listVPCs})
	s.handle(policyPrefix+project+"/vpcs/{vpc}", methods{"GET": s.getVPC})
	// Static routes and the forwarding table, alike on every router.
	for _, router := range []string{"/infra/tier-1s/{t1}", project + "/infra/tier-1s/{t1}", project + "/vpcs/{vpc}"} {
		s.handle(policyPrefix+router+"/static-routes", methods{"GET": s.listRoutes})
		s.handle(policyPrefix+router+"/forwarding-table", methods{"GET": s.forwardingTable})
		s.handle(policyPrefix+router+"/static-routes/{id}", methods{
			"GET": s.getRoute, "PATCH": s.patchRoute, "PUT": s.putRoute, "DELETE": s.deleteRoute})
	}
	s.handle(policyPrefix+"/search/query", methods{"GET": s.searchQuery})
	s.handle("/api/v1/node", methods{"GET": s.nodeProperties})
	s.handle("/api/v1/cluster/status", methods{"GET": s.clusterStatusHandler})
	s.handle("/api/session/create", methods{"POST": s.sessionCreate})
	s.handle("/api/session/destroy", methods{"POST": s.sessionDestroy})
	s.handle(cspAuthorizePath, methods{"POST": s.cspAuthorize})
	s.testAPI()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { notFound(w, r.URL.Path) })
}

func encodeCursor(id string) string {
	return "00" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func decodeCursor(c string) (string, error) {
	if !strings.HasPrefix(c, "00") {
		return "", errors.New("bad cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(c[2:])
	return string(b), err
}

func (s *Simulator) listTier1s(w http.ResponseWriter, r *http.Request) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := listResult[Tier1]{Results: []Tier1{}, SortBy: "display_name", SortAscending: true}
	c := callerFrom(r)
	parent := projectOfRequest(r) + "/infra"
	if project := projectOfRequest(r); project != "" {
		if _, ok := s.store.projects[project]; !ok {
			notFound(w, project)
			return
		}
	}
	for _, t := range s.store.routers {
		if t.vpc || t.ParentPath != parent {
			continue
		}
		v := t.Tier1
		v.Protection = protectionFor(c, &v.meta)
		out.Results = append(out.Results, v)
	}
	out.ResultCount = int64(len(out.Results))
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) getTier1(w http.ResponseWriter, r *http.Request) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(routerOf(r))
	if !ok {
		notFound(w, routerOf(r))
		return
	}
	v := t.Tier1
	v.Protection = protectionFor(callerFrom(r), &v.meta)
	writeJSON(w, http.StatusOK, v)
}

func (s *Simulator) patchTier1(w http.ResponseWriter, r *http.Request) {
	var in tier1Input
	if !decodeBody(w, r, &in) {
		return
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	c := callerFrom(r)
	if t, ok := s.store.router(routerOf(r)); ok {
		if e := mayChange(c, &t.meta, "Tier1"); e != nil {
			writeError(w, e.status, e.code, e.msg)
			return
		}
	}
	if project := projectOfRequest(r); project != "" {
		if _, ok := s.store.projects[project]; !ok {
			notFound(w, project)
			return
		}
	}
	if _, err := s.store.putRouter(routerOf(r), in, c); err != nil {
		invalid(w, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Simulator) listRoutes(w http.ResponseWriter, r *http.Request) {
	cursor, size, ok := pageParams(w, r)
	if !ok {
		return
	}
	s.store.mu.Lock() // page() may rebuild the sorted index
	t, found := s.store.router(routerOf(r))
	if !found {
		s.store.mu.Unlock()
		notFound(w, routerOf(r))
		return
	}
	results, next := t.page(cursor, size)
	total := len(t.routes)
	s.store.mu.Unlock()
	c := callerFrom(r)
	for i := range results {
		results[i].Protection = protectionFor(c, &results[i].meta)
	}
	out := listResult[StaticRoute]{Results: results, ResultCount: int64(total), SortBy: "id", SortAscending: true}
	if next != "" {
		out.Cursor = encodeCursor(next)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) getRoute(w http.ResponseWriter, r *http.Request) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t1, id := routerOf(r), r.PathValue("id")
	t, ok := s.store.router(t1)
	if !ok {
		notFound(w, t1)
		return
	}
	route, ok := t.routes[id]
	if !ok {
		notFound(w, t1+"/static-routes/"+id)
		return
	}
	v := *route
	v.Protection = protectionFor(callerFrom(r), &v.meta)
	writeJSON(w, http.StatusOK, v)
}

// patchRoute creates or replaces a route (NSX's PATCH ignores _revision).
func (s *Simulator) patchRoute(w http.ResponseWriter, r *http.Request) {
	s.writeRoute(w, r, false)
}

// putRoute creates a route or updates it if _revision matches (412 if stale).
func (s *Simulator) putRoute(w http.ResponseWriter, r *http.Request) {
	s.writeRoute(w, r, true)
}

func (s *Simulator) writeRoute(w http.ResponseWriter, r *http.Request, checkRevision bool) {
	var in routeInput
	if !decodeBody(w, r, &in) {
		return
	}
	t1, id := routerOf(r), r.PathValue("id")
	route, err := buildRoute(id, in)
	if err != nil {
		invalid(w, "Field level validation errors: "+err.Error())
		return
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(t1)
	if !ok {
		notFound(w, t1)
		return
	}
	c := callerFrom(r)
	if cur, exists := t.routes[id]; exists {
		if e := mayChange(c, &cur.meta, "StaticRoutes"); e != nil {
			writeError(w, e.status, e.code, e.msg)
			return
		}
	}
	if checkRevision {
		if apiErr := revisionConflict(t, id, in.Revision, true); apiErr != nil {
			writeError(w, apiErr.status, apiErr.code, apiErr.msg)
			return
		}
	}
	stored := s.store.putRoute(t, route, c)
	s.stats.addWrites(1)
	if checkRevision {
		stored.Protection = protectionFor(c, &stored.meta)
		writeJSON(w, http.StatusOK, stored)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// revisionConflict checks a client's _revision against the stored route. With
// required, updating an existing route without _revision is refused too (PUT).
func revisionConflict(t *tier1State, id string, rev *int64, required bool) *apiErr {
	cur, exists := t.routes[id]
	if !exists {
		return nil
	}
	if rev == nil {
		if required {
			return &apiErr{http.StatusBadRequest, CodeInvalid, fmt.Sprintf("_revision is required to update the existing object %s.", cur.Path)}
		}
		return nil
	}
	if *rev != cur.Revision {
		return &apiErr{http.StatusPreconditionFailed, CodeRevision,
			fmt.Sprintf("The object %s was modified by somebody else (_revision %d given, current is %d). Read it again and retry.", cur.Path, *rev, cur.Revision)}
	}
	return nil
}

func (s *Simulator) deleteRoute(w http.ResponseWriter, r *http.Request) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(routerOf(r))
	if !ok {
		notFound(w, routerOf(r))
		return
	}
	if cur, exists := t.routes[r.PathValue("id")]; exists {
		if e := mayChange(callerFrom(r), &cur.meta, "StaticRoutes"); e != nil {
			writeError(w, e.status, e.code, e.msg)
			return
		}
	}
	if s.store.deleteRoute(t, r.PathValue("id")) {
		s.stats.addWrites(1)
	}
	w.WriteHeader(http.StatusOK) // NSX answers 200 whether or not the route existed
}

// realizedEntities answers for a Tier-1 or a route intent path. A route is
// IN_PROGRESS for RealizeDelay after each change, then REALIZED. It answers
// for the paths of its own space only (the default space's, or its project's).
func (s *Simulator) realizedEntities(w http.ResponseWriter, r *http.Request) {
	intent := r.URL.Query().Get("intent_path")
	if intent == "" {
		invalid(w, "Field level validation errors: {intent_path: required parameter is missing}")
		return
	}
	t1, rest, found := splitIntent(intent)
	if ref, err := parseRouter(t1); !found || err != nil || ref.project != projectOfRequest(r) {
		// Each space answers for its own objects: a project's realized
		// state for the project's paths, /infra's for the default space.
		notFound(w, intent)
		return
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(t1)
	if !ok {
		notFound(w, intent)
		return
	}
	ent := realizedEntity{ResourceType: "GenericPolicyRealizedResource", IntentPaths: []string{intent}, State: "REALIZED",
		PublishStatus: "REALIZED", RuntimeStatus: "UNINITIALIZED"}
	switch {
	case rest == "":
		ent.ID, ent.DisplayName, ent.EntityType = t.UniqueID, t.ID, "RealizedLogicalRouter"
		if t.vpc {
			ent.EntityType = "RealizedVpc"
		}
		ent.LastModifiedTime, ent.Revision = t.LastModifiedTime, t.Revision
	case strings.HasPrefix(rest, "static-routes/"):
		route, ok := t.routes[strings.TrimPrefix(rest, "static-routes/")]
		if !ok {
			notFound(w, intent)
			return
		}
		ent.ID, ent.DisplayName, ent.EntityType = route.UniqueID, route.DisplayName, "RealizedLogicalRouterStaticRoute"
		ent.LastModifiedTime, ent.Revision = route.LastModifiedTime, route.Revision
		st := s.realizationOf(t.Path, route)
		ent.State, ent.PublishStatus = st.State, st.PublishStatus
		if st.RuntimeError != "" {
			ent.RuntimeStatus, ent.RuntimeError = "ERROR", st.RuntimeError
		}
	default:
		notFound(w, intent)
		return
	}
	ent.Path = intent + "/realized-state/" + ent.ID
	ent.RealizationSpecificIdentifier = ent.ID
	writeJSON(w, http.StatusOK, listResult[realizedEntity]{Results: []realizedEntity{ent}, ResultCount: 1})
}

// realization is a route's realized state.
type realization struct {
	State, PublishStatus, RuntimeError string
}

// realizationOf is a route's realized state: UNREALIZED (publish status
// IN_PROGRESS) for RealizeDelay after each change, ERROR when the realizer
// could not make it real, otherwise REALIZED. Caller holds the registry lock.
func (s *Simulator) realizationOf(router string, route *StaticRoute) realization {
	if s.opts.Now().UnixMilli()-route.LastModifiedTime < s.opts.RealizeDelay.Milliseconds() {
		return realization{State: "UNREALIZED", PublishStatus: "IN_PROGRESS"}
	}
	if msg, failed := s.realizeErrors.Load(router + "/" + route.ID); failed {
		return realization{State: "ERROR", PublishStatus: "REALIZED", RuntimeError: msg.(string)}
	}
	return realization{State: "REALIZED", PublishStatus: "REALIZED"}
}
