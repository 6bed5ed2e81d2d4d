package nsxsim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// searchTerm is one key:value term of an NSX search query.
type searchTerm struct{ key, value string }

var searchKeys = map[string]bool{
	"resource_type": true, "tags.scope": true, "tags.tag": true, "id": true,
	"display_name": true, "parent_path": true, "path": true, "network": true,
}

// parseSearchQuery parses the subset of NSX's search syntax t1route uses:
// key:value terms joined by AND; values may be quoted, and '\' escapes the
// next character (NSX wants '/' and ':' in values escaped).
func parseSearchQuery(q string) ([]searchTerm, error) {
	var terms []searchTerm
	for _, part := range splitAND(q) {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("search term %q is not of the form key:value", part)
		}
		if !searchKeys[k] {
			return nil, fmt.Errorf("search key %q is not supported by nsxsim", k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		terms = append(terms, searchTerm{k, b.String()})
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("the query is empty")
	}
	return terms, nil
}

func splitAND(q string) []string {
	var parts []string
	for {
		i := strings.Index(strings.ToUpper(q), " AND ")
		if i < 0 {
			return append(parts, q)
		}
		parts = append(parts, q[:i])
		q = q[i+5:]
	}
}

func tagsMatch(tags []Tag, t searchTerm) bool {
	for _, tag := range tags {
		if (t.key == "tags.scope" && tag.Scope == t.value) || (t.key == "tags.tag" && tag.Tag == t.value) {
			return true
		}
	}
	return false
}

func routeMatches(r *StaticRoute, terms []searchTerm) bool {
	for _, t := range terms {
		var ok bool
		switch t.key {
		case "resource_type":
			ok = t.value == "StaticRoutes"
		case "tags.scope", "tags.tag":
			ok = tagsMatch(r.Tags, t)
		case "id":
			ok = r.ID == t.value
		case "display_name":
			ok = r.DisplayName == t.value
		case "parent_path":
			ok = r.ParentPath == t.value
		case "path":
			ok = r.Path == t.value
		case "network":
			ok = r.Network == t.value
		}
		if !ok {
			return false
		}
	}
	return true
}

// searchQuery answers GET /policy/api/v1/search/query for StaticRoutes, from
// the search index: with Options.SearchLag, a write shows here only that long
// after it was made, as NSX's index lags its registry (which is why t1route
// reconciles from the per-Tier-1 list and not from here).
func (s *Simulator) searchQuery(w http.ResponseWriter, r *http.Request) {
	terms, err := parseSearchQuery(r.URL.Query().Get("query"))
	if err != nil {
		invalid(w, "Invalid search query: "+err.Error())
		return
	}
	cursor, size, ok := pageParams(w, r)
	if !ok {
		return
	}
	var all []StaticRoute
	if idx := s.store.index; idx != nil {
		s.store.mu.Lock() // catching up changes the index
		idx.catchUp(s.opts.Now())
		for _, route := range idx.routes {
			if routeMatches(&route, terms) {
				all = append(all, route)
			}
		}
		s.store.mu.Unlock()
	} else {
		s.store.mu.RLock()
		for _, t := range s.store.routers {
			for _, route := range t.routes {
				if routeMatches(route, terms) {
					all = append(all, *route)
				}
			}
		}
		s.store.mu.RUnlock()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	start := sort.Search(len(all), func(i int) bool { return all[i].Path > cursor })
	end := min(start+size, len(all))
	out := listResult[StaticRoute]{Results: all[start:end], ResultCount: int64(len(all)), SortBy: "path", SortAscending: true}
	if end < len(all) {
		out.Cursor = encodeCursor(all[end-1].Path)
	}
	if out.Results == nil {
		out.Results = []StaticRoute{}
	}
	c := callerFrom(r)
	for i := range out.Results {
		out.Results[i].Protection = protectionFor(c, &out.Results[i].meta)
	}
	writeJSON(w, http.StatusOK, out)
}

// searchIndex is the search API's copy of the routes, updated lag after
// each write: NSX indexes writes asynchronously.
type searchIndex struct {
	lag     time.Duration
	pending []indexChange          // writes not yet indexed, in order
	routes  map[string]StaticRoute // indexed routes by path
}

type indexChange struct {
	at      time.Time
	route   StaticRoute
	deleted bool
}

func newSearchIndex(lag time.Duration) *searchIndex {
	return &searchIndex{lag: lag, routes: map[string]StaticRoute{}}
}

// record queues a write made at now. Caller holds the registry's write lock.
func (x *searchIndex) record(now time.Time, r StaticRoute, deleted bool) {
	x.pending = append(x.pending, indexChange{at: now, route: r, deleted: deleted})
}

// catchUp indexes the writes made at least lag before now. Caller holds the
// registry's write lock.
func (x *searchIndex) catchUp(now time.Time) {
	n := 0
	for ; n < len(x.pending) && !now.Before(x.pending[n].at.Add(x.lag)); n++ {
		c := x.pending[n]
		if c.deleted {
			delete(x.routes, c.route.Path)
		} else {
			x.routes[c.route.Path] = c.route
		}
	}
	x.pending = append(x.pending[:0], x.pending[n:]...)
}
