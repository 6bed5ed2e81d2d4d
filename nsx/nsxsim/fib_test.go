package nsxsim_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const fibPath = "/policy/api/v1/infra/tier-1s/t1-routable/forwarding-table"

// fibEntries reads every page of a forwarding table and returns "network via
// next hop" per entry, and the number of pages.
func fibEntries(t *testing.T, c *rawClient, query string) ([]string, int) {
	t.Helper()
	var out []string
	cursor, pages := "", 0
	for {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		a := c.do("GET", fibPath+"?"+q, "")
		if a.status != 200 {
			t.Fatalf("forwarding table ?%s = %d %s", q, a.status, a.raw)
		}
		pages++
		for _, tbl := range a.body["results"].([]any) {
			tm := tbl.(map[string]any)
			if tm["edge_node"] == "" || tm["status"] != "SUCCESS" {
				t.Fatalf("routing table %v", tm)
			}
			entries := tm["route_entries"].([]any)
			if tm["count"] != float64(len(entries)) {
				t.Fatalf("count %v for %d entries", tm["count"], len(entries))
			}
			for _, e := range entries {
				em := e.(map[string]any)
				out = append(out, fmt.Sprintf("%s via %s %s", em["network"], em["next_hop"], em["route_type"]))
			}
		}
		next, _ := a.body["cursor"].(string)
		if next == "" {
			return out, pages
		}
		cursor = next
	}
}

func TestForwardingTable(t *testing.T) {
	c := newRaw(t, nsxsim.Options{RateLimit: -1})
	for i := range 25 {
		c.sim.PutRoute("t1-routable", fmt.Sprintf("r%02d", i), fmt.Sprintf("100.96.%d.0/24", i), []string{"198.51.100.1"})
	}
	c.sim.PutRoute("t1-routable", "ecmp", "100.97.0.0/24", []string{"198.51.100.2", "198.51.100.3"})
	c.sim.PutRoute("t1-routable", "v6", "2001:DB8:1::5/64", []string{"2001:DB8:0::1"}) // shown canonical
	c.sim.AddTier1("t1-other", "TIER1_STATIC_ROUTES")
	c.sim.PutRoute("t1-other", "elsewhere", "100.98.0.0/24", []string{"198.51.100.4"})

	cases := []struct {
		name, query string
		want        int // entries
		pages       int
		contains    []string
	}{
		{"all, one page", "", 28, 1, []string{"100.97.0.0/24 via 198.51.100.2 t1s", "100.97.0.0/24 via 198.51.100.3 t1s", "2001:db8:1::/64 via 2001:db8::1 t1s"}},
		{"static, paged by 10", "route_source=STATIC&page_size=10", 28, 3, []string{"100.96.24.0/24 via 198.51.100.1 t1s"}},
		{"lower-case source", "route_source=static", 28, 1, nil},
		{"connected: none modelled", "route_source=CONNECTED", 0, 1, nil},
		{"one network", "network_prefix=100.97.0.0/24", 2, 1, []string{"100.97.0.0/24 via 198.51.100.2 t1s"}},
		{"an address", "network_prefix=" + url.QueryEscape("2001:db8:1::5"), 1, 1, []string{"2001:db8:1::/64 via 2001:db8::1 t1s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, pages := fibEntries(t, c, tc.query)
			if len(got) != tc.want || pages != tc.pages {
				t.Fatalf("%d entries in %d pages, want %d in %d: %v", len(got), pages, tc.want, tc.pages, got)
			}
			seen := map[string]bool{}
			for _, e := range got {
				if seen[e] {
					t.Fatalf("entry %s served twice", e)
				}
				seen[e] = true
				if strings.Contains(e, "100.98.0.0") {
					t.Fatalf("another Tier-1's route in this forwarding table: %s", e)
				}
			}
			for _, w := range tc.contains {
				if !seen[w] {
					t.Fatalf("missing %q in %v", w, got)
				}
			}
		})
	}
	for _, bad := range []string{"route_source=RIP", "network_prefix=nope", "component_type=SR"} {
		if a := c.do("GET", fibPath+"?"+bad, ""); a.status != 400 || a.errorCode() != nsxsim.CodeInvalid {
			t.Errorf("?%s = %d %s, want NSX's 400", bad, a.status, a.raw)
		}
	}
	if a := c.do("GET", "/policy/api/v1/infra/tier-1s/nope/forwarding-table", ""); a.status != 404 || a.errorCode() != nsxsim.CodeNotFound {
		t.Errorf("unknown Tier-1 = %d %s", a.status, a.raw)
	}
	if a := c.do("GET", fibPath+"?page_size=5", ""); a.body["result_count"] != 28.0 {
		t.Errorf("first page result_count = %v, want 28", a.body["result_count"])
	}
}

// A route is in the forwarding table exactly when its realized state says
// REALIZED: not during RealizeDelay after a change.
func TestForwardingTableFollowsRealization(t *testing.T) {
	clock := newFakeClock()
	c := newRaw(t, nsxsim.Options{RateLimit: -1, RealizeDelay: 10 * time.Second, Now: clock.Now})
	c.sim.PutRoute("t1-routable", "old", "100.96.1.0/24", []string{"198.51.100.1"})
	clock.Add(10 * time.Second)
	c.sim.PutRoute("t1-routable", "new", "100.96.2.0/24", []string{"198.51.100.2"})
	realized := func(id string) string {
		a := c.do("GET", "/policy/api/v1/infra/realized-state/realized-entities?intent_path="+url.QueryEscape("/infra/tier-1s/t1-routable/static-routes/"+id), "")
		return a.body["results"].([]any)[0].(map[string]any)["state"].(string)
	}
	got, _ := fibEntries(t, c, "route_source=STATIC")
	if strings.Join(got, ";") != "100.96.1.0/24 via 198.51.100.1 t1s" || realized("old") != "REALIZED" || realized("new") != "UNREALIZED" {
		t.Fatalf("during the new route's realize delay: table %v, old %s, new %s", got, realized("old"), realized("new"))
	}
	clock.Add(10 * time.Second)
	got, _ = fibEntries(t, c, "route_source=STATIC")
	if len(got) != 2 || realized("new") != "REALIZED" {
		t.Fatalf("after the delay: table %v, new %s", got, realized("new"))
	}
	// A changed next hop leaves the table until the change is realized.
	c.sim.PutRoute("t1-routable", "old", "100.96.1.0/24", []string{"198.51.100.9"})
	if got, _ = fibEntries(t, c, ""); len(got) != 1 {
		t.Fatalf("while a change realizes: %v", got)
	}
	clock.Add(10 * time.Second)
	if got, _ = fibEntries(t, c, ""); !strings.Contains(strings.Join(got, ";"), "100.96.1.0/24 via 198.51.100.9") {
		t.Fatalf("after the change realized: %v", got)
	}
}

// The search index lags writes by SearchLag: a write is invisible to search
// until then (while the per-Tier-1 list shows it at once), and visible after;
// so is a deletion.
func TestSearchLag(t *testing.T) {
	clock := newFakeClock()
	c := newRaw(t, nsxsim.Options{RateLimit: -1, SearchLag: 3 * time.Second, Now: clock.Now})
	search := func() int {
		t.Helper()
		a := c.do("GET", "/policy/api/v1/search/query?query="+url.QueryEscape("resource_type:StaticRoutes AND id:r1"), "")
		if a.status != 200 {
			t.Fatalf("search = %d %s", a.status, a.raw)
		}
		return int(a.body["result_count"].(float64))
	}
	if a := c.do("PATCH", routesPath+"/r1", routeBody("100.96.1.0/24", "198.51.100.1")); a.status != 200 {
		t.Fatal(a.raw)
	}
	if a := c.do("GET", routesPath+"/r1", ""); a.status != 200 {
		t.Fatalf("the registry must show a write at once: %d", a.status)
	}
	steps := []struct {
		advance time.Duration
		want    int
	}{{0, 0}, {2999 * time.Millisecond, 0}, {time.Millisecond, 1}, {time.Hour, 1}}
	for _, st := range steps {
		clock.Add(st.advance)
		if got := search(); got != st.want {
			t.Fatalf("after %s more: search finds %d, want %d", st.advance, got, st.want)
		}
	}
	c.do("DELETE", routesPath+"/r1", "")
	if got := search(); got != 1 {
		t.Fatalf("a deletion must reach search late too: finds %d right after", got)
	}
	clock.Add(3 * time.Second)
	if got := search(); got != 0 {
		t.Fatalf("after the lag the deleted route is still found")
	}
	if _, err := nsxsim.New(nsxsim.Options{SearchLag: -time.Second}); err == nil {
		t.Fatal("a negative search lag was accepted")
	}
}
