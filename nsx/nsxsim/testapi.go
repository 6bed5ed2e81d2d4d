package nsxsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// Test API: the Go methods below inspect and change the simulator's state
// directly, and /nsxsim/api/... exposes the same to scripts. Changes made here
// are "out of band": they bump _revision like any other writer.

// StartTest starts a simulator on a random loopback port and closes it when
// the test ends.
func StartTest(t testing.TB, opts Options) *Simulator {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("nsxsim: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("nsxsim: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Routes returns the static routes of a router (a default-space Tier-1's id,
// or any router's policy path), sorted by ID, with
// _protection as a reader that is neither their creator nor an admin sees it.
func (s *Simulator) Routes(tier1 string) []StaticRoute {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(routerKey(tier1))
	if !ok {
		return nil
	}
	out := make([]StaticRoute, 0, len(t.routes))
	for _, r := range t.routes {
		v := *r
		v.Protection = protectionFor(caller{}, &v.meta)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RouteCount returns how many static routes a Tier-1 has: what a poll for
// progress needs, without the copy and sort of Routes (at 50,000 routes a
// poll of Routes every few milliseconds cost the bench more CPU and memory
// than the controller it measured).
func (s *Simulator) RouteCount(tier1 string) int {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	t, ok := s.store.router(routerKey(tier1))
	if !ok {
		return 0
	}
	return len(t.routes)
}

// Route returns one route (as Routes shows it) and whether it exists.
func (s *Simulator) Route(tier1, id string) (StaticRoute, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if t, ok := s.store.router(routerKey(tier1)); ok {
		if r, ok := t.routes[id]; ok {
			v := *r
			v.Protection = protectionFor(caller{}, &v.meta)
			return v, true
		}
	}
	return StaticRoute{}, false
}

// PutRoute creates or replaces a route as another NSX user would.
func (s *Simulator) PutRoute(tier1 string, id, network string, nextHops []string, tags ...Tag) error {
	hops := make([]NextHop, len(nextHops))
	for i, h := range nextHops {
		hops[i] = NextHop{IPAddress: h}
	}
	r, err := buildRoute(id, routeInput{Network: &network, NextHops: hops, Tags: tags})
	if err != nil {
		return err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(routerKey(tier1))
	if !ok {
		return fmt.Errorf("nsxsim: no tier-1 %q", tier1)
	}
	s.store.putRoute(t, r, outOfBandCaller)
	return nil
}

// TouchRoute bumps a route's _revision without changing it (a concurrent writer).
func (s *Simulator) TouchRoute(tier1, id string) bool {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(routerKey(tier1))
	if !ok {
		return false
	}
	r, ok := t.routes[id]
	if !ok {
		return false
	}
	s.store.putRoute(t, *r, outOfBandCaller)
	return true
}

// DeleteRoute removes a route out of band; it reports whether it existed.
func (s *Simulator) DeleteRoute(tier1, id string) bool {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(routerKey(tier1))
	return ok && s.store.deleteRoute(t, id)
}

// AddTier1 creates (or patches) a Tier-1 with the given advertisement
// types: id is a default-space Tier-1's id, or a Tier-1's policy path in a
// project (which is created if missing).
func (s *Simulator) AddTier1(id string, advertisement ...string) error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if advertisement == nil {
		advertisement = []string{}
	}
	ref, err := parseRouter(routerKey(id))
	if err != nil {
		return err
	}
	if ref.vpc {
		return fmt.Errorf("nsxsim: %s is a VPC, not a Tier-1", id)
	}
	if ref.project != "" {
		s.store.ensureProject(ref.project, outOfBandCaller)
	}
	_, err = s.store.putRouter(ref.path, tier1Input{RouteAdvertisementTypes: advertisement}, outOfBandCaller)
	return err
}

// AddRouter creates a router by policy path, with its project: a Tier-1
// (default space or project) advertising static and connected routes, or a
// VPC connected to /infra/tier-0s/t0. An existing one is left as it is.
func (s *Simulator) AddRouter(path string) error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if _, ok := s.store.router(path); ok {
		return nil
	}
	_, err := s.store.addRouter(path, outOfBandCaller)
	return err
}

// SetVPCDefaultGateway sets a VPC's default_gateway_path ("" disconnects it).
func (s *Simulator) SetVPCDefaultGateway(vpc, gateway string) error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	t, ok := s.store.router(vpc)
	if !ok || !t.vpc {
		return fmt.Errorf("nsxsim: no VPC %q", vpc)
	}
	t.defaultGateway = gateway
	return nil
}

// RemoveProject deletes a project and every router in it, as an admin
// would (tests of a project that does not exist).
func (s *Simulator) RemoveProject(project string) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	delete(s.store.projects, project)
	for path, t := range s.store.routers {
		if strings.HasPrefix(path, project+"/") {
			for id := range t.routes {
				s.store.deleteRoute(t, id)
			}
			delete(s.store.routers, path)
		}
	}
}

// SetPassword sets (or creates) a local user's password, as an NSX admin
// rotating it would; open sessions stay valid.
func (s *Simulator) SetPassword(user, password string) {
	s.auth.mu.Lock()
	if s.opts.Users == nil {
		s.opts.Users = map[string]string{}
	}
	s.opts.Users[user] = password
	s.auth.mu.Unlock()
}

// IssuedSecrets returns every session ID, XSRF token and CSP access token the
// simulator has handed out, for tests asserting they never leak into logs.
func (s *Simulator) IssuedSecrets() []string {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return append([]string{}, s.auth.issued...)
}

// SetRealizationError makes a route's realization fail with msg, as an edge
// refusing it would: its realized state is ERROR and it leaves the forwarding
// table. An empty msg clears it. (The netns realizer sets and clears these
// itself.) tier1 is a default-space Tier-1's id or any router's path.
func (s *Simulator) SetRealizationError(tier1, id, msg string) {
	key := routerKey(tier1) + "/" + id
	if msg == "" {
		s.realizeErrors.Delete(key)
		return
	}
	s.realizeErrors.Store(key, msg)
}

// AddFault adds a fault rule.
func (s *Simulator) AddFault(f FaultRule) error { return s.faults.add(f) }

// ClearFaults removes every fault rule.
func (s *Simulator) ClearFaults() { s.faults.clear() }

// ExpireSessions invalidates every NSX session (idle timeout, manager restart).
func (s *Simulator) ExpireSessions() { s.auth.expireSessions() }

// ExpireTokens invalidates every CSP access token.
func (s *Simulator) ExpireTokens() { s.auth.expireTokens() }

// OnRouteChange registers a function called, in order, for every route
// created, replaced or deleted, with its router's policy path (the netns
// realizer uses it). It runs under the registry lock: it must not call back
// into the simulator.
func (s *Simulator) OnRouteChange(fn func(router string, r StaticRoute, deleted bool)) {
	s.store.mu.Lock()
	s.store.onChange = fn
	s.store.mu.Unlock()
}

// RouteCount is the answer of GET /nsxsim/api/tier-1s/{t1}/route-count.
type RouteCount struct {
	Count int `json:"count"`
}

func (s *Simulator) testAPI() {
	s.handle("/nsxsim/api/faults", methods{
		"POST": func(w http.ResponseWriter, r *http.Request) {
			var f FaultRule
			if !decodeBody(w, r, &f) {
				return
			}
			if err := s.AddFault(f); err != nil {
				invalid(w, err.Error())
				return
			}
			w.WriteHeader(http.StatusCreated)
		},
		"DELETE": func(w http.ResponseWriter, r *http.Request) { s.ClearFaults(); w.WriteHeader(http.StatusOK) },
	})
	s.handle("/nsxsim/api/expire-sessions", methods{"POST": func(w http.ResponseWriter, r *http.Request) {
		s.ExpireSessions()
		w.WriteHeader(http.StatusOK)
	}})
	s.handle("/nsxsim/api/expire-tokens", methods{"POST": func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusOK)
	}})
	s.handle("/nsxsim/api/stats", methods{
		"GET": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(s.Stats()) //nolint:errcheck
		},
		"DELETE": func(w http.ResponseWriter, r *http.Request) { s.ResetStats(); w.WriteHeader(http.StatusOK) },
	})
	// Routes of a Tier-1 without NSX's paging, auth or limits (tests and the bench).
	s.handle("/nsxsim/api/tier-1s/{t1}/routes", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Routes(r.PathValue("t1")))
	}})
	s.handle("/nsxsim/api/tier-1s/{t1}/route-count", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, RouteCount{Count: s.RouteCount(r.PathValue("t1"))})
	}})
	// The same for any router, named by its policy path: ?router=<path>.
	s.handle("/nsxsim/api/routes", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Routes(r.URL.Query().Get("router")))
	}})
	s.handle("/nsxsim/api/route-count", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, RouteCount{Count: s.RouteCount(r.URL.Query().Get("router"))})
	}})
	s.handle("/nsxsim/api/routes/{id}", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		route, ok := s.Route(r.URL.Query().Get("router"), r.PathValue("id"))
		if !ok {
			notFound(w, r.URL.Path)
			return
		}
		writeJSON(w, http.StatusOK, route)
	}, "DELETE": func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteRoute(r.URL.Query().Get("router"), r.PathValue("id")) {
			notFound(w, r.URL.Path)
			return
		}
		w.WriteHeader(http.StatusOK)
	}})
	s.handle("/nsxsim/api/tier-1s/{t1}/routes/{id}", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		route, ok := s.Route(r.PathValue("t1"), r.PathValue("id"))
		if !ok {
			notFound(w, r.URL.Path)
			return
		}
		writeJSON(w, http.StatusOK, route)
	}, "DELETE": func(w http.ResponseWriter, r *http.Request) {
		// Out of band, as an operator in the NSX UI would: the cluster's
		// controller must notice and repair it.
		if !s.DeleteRoute(r.PathValue("t1"), r.PathValue("id")) {
			notFound(w, r.URL.Path)
			return
		}
		w.WriteHeader(http.StatusOK)
	}})
}
