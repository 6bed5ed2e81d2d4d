package podroute

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

func TestActualRoutes(t *testing.T) {
	r := func(id string) nsx.Route { return nsx.Route{ID: id, Network: "100.96.0.0/24"} }
	refusedC := func(id string) bool { return id == "c" }
	// Each step acts on a and on tier1, the routes as NSX holds them (what lists see).
	type step func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route)
	refresh := func(wantList bool) step {
		return func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
			t.Helper()
			listed := false
			_, _, err := a.Refresh(context.Background(), func(context.Context) ([]nsx.Route, error) {
				listed = true
				return slices.Clone(*tier1), nil
			})
			if err != nil || listed != wantList {
				t.Fatalf("Refresh listed %v (want %v), err %v", listed, wantList, err)
			}
		}
	}
	background := func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
		if !a.BeginList() {
			t.Fatal("BeginList refused with no list running")
		}
		a.EndList(slices.Clone(*tier1), nil)
	}
	cases := []struct {
		name  string
		steps []step
		want  string // route IDs known after the steps, sorted
	}{
		{"the first pass lists", []step{refresh(true)}, "a,b"},
		{"between lists, passes use the last list plus what was applied", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
				a.Applied(Changes{Upserts: []nsx.Route{r("c"), r("d")}, Deletes: []string{"a"}}, nil)
				*tier1 = nil // changed out of band: not seen until the next list
			}, refresh(false)}, "b,c,d"},
		{"an upsert NSX refused is not recorded", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, _ *[]nsx.Route) {
				a.Applied(Changes{Upserts: []nsx.Route{r("c"), r("d")}}, refusedC)
			}}, "a,b,d"},
		{"invalidated: the next pass lists", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) { *tier1 = []nsx.Route{r("x")}; a.Invalidate() }, refresh(true)}, "x"},
		{"a background list is adopted without listing again", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) { *tier1 = []nsx.Route{r("a")} }, background, refresh(false)}, "a"},
		{"writes during a background list come from our state, the rest from the list", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
				if !a.BeginList() {
					t.Fatal("BeginList refused")
				}
				listed := []nsx.Route{r("a"), r("b"), r("z")} // taken before our writes; z made out of band
				a.Applied(Changes{Upserts: []nsx.Route{r("c")}, Deletes: []string{"b"}}, nil)
				a.EndList(listed, nil)
			}, refresh(false)}, "a,c,z"},
		{"a failed background list makes the next pass list", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
				a.BeginList()
				a.EndList(nil, errors.New("timeout"))
				*tier1 = []nsx.Route{r("y")}
			}, refresh(true)}, "y"},
		{"invalidation wins over a finished background list", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
				background(t, a, tier1)
				*tier1 = []nsx.Route{r("w")}
				a.Invalidate()
			}, refresh(true), refresh(false)}, "w"},
		{"one background list at a time", []step{refresh(true),
			func(t *testing.T, a *actualRoutes, tier1 *[]nsx.Route) {
				if !a.BeginList() || a.BeginList() {
					t.Fatal("a second background list was allowed to start")
				}
				a.EndList(nil, nil)
				if !a.BeginList() {
					t.Fatal("no background list after the first ended")
				}
				a.EndList([]nsx.Route{r("a")}, nil)
			}, refresh(false)}, "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &actualRoutes{}
			tier1 := []nsx.Route{r("a"), r("b")}
			for _, s := range tc.steps {
				s(t, a, &tier1)
			}
			var ids []string
			for id := range a.Routes() {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if got := strings.Join(ids, ","); got != tc.want {
				t.Fatalf("routes %s, want %s", got, tc.want)
			}
			if len(a.List()) != len(ids) {
				t.Fatalf("List has %d routes, Routes %d", len(a.List()), len(ids))
			}
		})
	}
}

// A failed list is returned, and the pass after it lists again; what the
// pass before the list knew is what Refresh reports as before.
func TestActualRoutesRefreshErrors(t *testing.T) {
	a := &actualRoutes{}
	calls := 0
	list := func(context.Context) ([]nsx.Route, error) {
		calls++
		if calls == 2 {
			return nil, errors.New("NSX is down")
		}
		return []nsx.Route{{ID: "r"}}, nil
	}
	if _, listed, err := a.Refresh(context.Background(), list); err != nil || !listed {
		t.Fatal(err)
	}
	a.Invalidate()
	if _, _, err := a.Refresh(context.Background(), list); err == nil {
		t.Fatal("a failed list was not returned")
	}
	before, listed, err := a.Refresh(context.Background(), list)
	if err != nil || !listed || calls != 3 || len(before) != 1 {
		t.Fatalf("after a failure: listed %v, %d calls, before %v, err %v", listed, calls, before, err)
	}
}
