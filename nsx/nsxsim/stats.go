package nsxsim

import (
	"maps"
	"sync"
)

// counters count what the simulator saw; Stats returns a snapshot.
type counters struct {
	mu                sync.Mutex
	Requests          int            // every request, faulted or not
	ByMethod          map[string]int // requests by HTTP method
	ByStatus          map[int]int    // answered requests by status (0: connection reset)
	Faults            map[string]int // injected faults by kind
	RateLimited       int            // 429s from the per-client limits
	Busy              int            // 503s from the global concurrency limit
	Logins            int            // sessions created
	TokenExchanges    int            // CSP access tokens issued
	RoutesWritten     int            // route creations, replacements and deletions
	HierarchicalCalls int            // hierarchical calls applied (PATCH of /infra, a project's infra, /org-root)
}

func (s *counters) clearMaps() {
	s.ByMethod, s.ByStatus, s.Faults = map[string]int{}, map[int]int{}, map[string]int{}
}

// begin counts a request as it arrives (so tests can see calls in flight).
func (s *counters) begin(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests++
	s.ByMethod[method]++
}

// record counts a request's answer.
func (s *counters) record(status int, hijacked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hijacked {
		status = 0
	}
	s.ByStatus[status]++
}

func (s *counters) addFault(kind string) {
	s.mu.Lock()
	s.Faults[kind]++
	s.mu.Unlock()
}

func (s *counters) addLimited(status int) {
	s.mu.Lock()
	if status == 429 {
		s.RateLimited++
	} else {
		s.Busy++
	}
	s.mu.Unlock()
}

func (s *counters) addWrites(routes int) {
	s.mu.Lock()
	s.RoutesWritten += routes
	s.mu.Unlock()
}

func (s *counters) addHierarchical() {
	s.mu.Lock()
	s.HierarchicalCalls++
	s.mu.Unlock()
}

// StatsSnapshot is a copy of Stats at one moment.
type StatsSnapshot struct {
	Requests          int
	ByMethod          map[string]int
	ByStatus          map[int]int
	Faults            map[string]int
	RateLimited, Busy int
	Logins            int
	TokenExchanges    int
	RoutesWritten     int
	HierarchicalCalls int
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() StatsSnapshot {
	s.stats.mu.Lock()
	snap := StatsSnapshot{
		Requests: s.stats.Requests, ByMethod: maps.Clone(s.stats.ByMethod), ByStatus: maps.Clone(s.stats.ByStatus),
		Faults: maps.Clone(s.stats.Faults), RateLimited: s.stats.RateLimited, Busy: s.stats.Busy,
		RoutesWritten: s.stats.RoutesWritten, HierarchicalCalls: s.stats.HierarchicalCalls,
	}
	s.stats.mu.Unlock()
	s.auth.mu.Lock()
	snap.Logins, snap.TokenExchanges = s.auth.logins, s.auth.exchange
	s.auth.mu.Unlock()
	return snap
}

// ResetStats zeroes the counters.
func (s *Simulator) ResetStats() {
	s.stats.mu.Lock()
	s.stats.Requests, s.stats.RateLimited, s.stats.Busy, s.stats.RoutesWritten, s.stats.HierarchicalCalls = 0, 0, 0, 0, 0
	s.stats.clearMaps()
	s.stats.mu.Unlock()
	s.auth.mu.Lock()
	s.auth.logins, s.auth.exchange = 0, 0
	s.auth.mu.Unlock()
}
