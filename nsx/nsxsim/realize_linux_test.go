package nsxsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// The realizer follows the API: routes appear, change and disappear as
// kernel routes in the namespace; a route the kernel refuses is an ERROR.
// Needs root (it creates a network namespace); CI runs as root.
func TestRealizeInNetns(t *testing.T) {
	ns, ip := routerNetns(t, "t1sim")
	// A route of the namespace's own must survive the realizer.
	ip("-n", ns, "route", "add", "203.0.113.0/24", "via", "198.51.100.254")

	s := StartTest(t, Options{Tier1s: []string{"t1"}})
	if err := s.PutRoute("t1", "before", "100.96.0.0/24", []string{"198.51.100.10"}); err != nil {
		t.Fatal(err)
	}
	stop, err := s.RealizeInNetns(ns, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	routes := func() string { return ip("-n", ns, "route") }
	eventually := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond(routes()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; routes:\n%s", what, routes())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("a route existing before the realizer started is realized", func(r string) bool {
		return strings.Contains(r, "100.96.0.0/24 via 198.51.100.10")
	})
	if err := s.PutRoute("t1", "r1", "100.96.1.0/24", []string{"198.51.100.11"}); err != nil {
		t.Fatal(err)
	}
	eventually("an added route is realized", func(r string) bool { return strings.Contains(r, "100.96.1.0/24 via 198.51.100.11") })
	if err := s.PutRoute("t1", "r1", "100.96.1.0/24", []string{"198.51.100.12"}); err != nil {
		t.Fatal(err)
	}
	eventually("a changed next hop is realized", func(r string) bool {
		return strings.Contains(r, "100.96.1.0/24 via 198.51.100.12") && !strings.Contains(r, "198.51.100.11")
	})
	s.DeleteRoute("t1", "r1")
	eventually("a deleted route is removed", func(r string) bool { return !strings.Contains(r, "100.96.1.0/24") })

	// Unreachable next hop: the kernel refuses, the realized state says ERROR.
	if err := s.PutRoute("t1", "bad", "100.96.9.0/24", []string{"192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if msg, ok := s.realizeErrors.Load("/infra/tier-1s/t1/bad"); ok {
			if !strings.Contains(msg.(string), "kernel refused") {
				t.Fatalf("realization error %q", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an unrealizable route shows no realization error")
		}
		time.Sleep(10 * time.Millisecond)
	}

	stop()
	r := routes()
	if strings.Contains(r, "100.96.0.0/24") || !strings.Contains(r, "203.0.113.0/24 via 198.51.100.254") {
		t.Fatalf("after stop, the realizer's routes must be gone and the namespace's own kept:\n%s", r)
	}
}

// Under the realizer, the forwarding table is the namespace's kernel table:
// what the kernel holds, not what the model says.
func TestForwardingTableFromKernel(t *testing.T) {
	ns, ip := routerNetns(t, "t1fib")

	s := StartTest(t, Options{Tier1s: []string{"t1", "t2"}, Users: map[string]string{"admin": "pw"}, RateLimit: -1})
	stop, err := s.RealizeInNetns(ns, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s.PutRoute("t1", "r1", "100.96.1.0/24", []string{"198.51.100.11"})
	s.PutRoute("t1", "ecmp", "100.96.3.0/24", []string{"198.51.100.13", "198.51.100.14"})
	s.PutRoute("t2", "r2", "100.96.2.0/24", []string{"198.51.100.12"})

	table := func(t1, query string) []string {
		t.Helper()
		req := httptest.NewRequest("GET", "/policy/api/v1/infra/tier-1s/"+t1+"/forwarding-table?"+query, nil)
		req.SetBasicAuth("admin", "pw")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var res listResult[routingTable]
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 || len(res.Results) != 1 || res.Results[0].Status != "SUCCESS" {
			t.Fatalf("forwarding table of %s = %d %s", t1, rec.Code, rec.Body.String())
		}
		var out []string
		for _, e := range res.Results[0].RouteEntries {
			out = append(out, e.Network+" via "+e.NextHop+" "+e.RouteType)
		}
		sort.Strings(out)
		return out
	}
	want := "100.96.1.0/24 via 198.51.100.11 t1s;100.96.3.0/24 via 198.51.100.13 t1s;100.96.3.0/24 via 198.51.100.14 t1s"
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(table("t1", "route_source=STATIC"), ";") != want {
		if time.Now().After(deadline) {
			t.Fatalf("t1's static entries = %v, want %s", table("t1", "route_source=STATIC"), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := table("t2", "route_source=STATIC"); strings.Join(got, ";") != "100.96.2.0/24 via 198.51.100.12 t1s" {
		t.Fatalf("t2's static entries = %v", got)
	}
	if got := table("t1", "route_source=CONNECTED"); strings.Join(got, ";") != "198.51.100.0/24 via 0.0.0.0 t1c" {
		t.Fatalf("connected entries = %v", got)
	}
	// The kernel is the truth: a route removed behind the simulator's back
	// leaves the table though the intent still holds it.
	ip("-n", ns, "route", "del", "100.96.1.0/24")
	if got := table("t1", "route_source=STATIC"); len(got) != 2 {
		t.Fatalf("after deleting the kernel route by hand: %v", got)
	}
	if _, ok := s.Route("t1", "r1"); !ok {
		t.Fatal("the intent lost r1")
	}
}

// routerNetns creates a network namespace (removed when the test ends) with
// a link "seg" on 198.51.100.1/24, as a Tier-1's segment, and returns its
// name and a runner of ip commands that fails the test on error. Skips
// unless root.
func routerNetns(t *testing.T, prefix string) (string, func(args ...string) string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (make e2e covers this as root too)")
	}
	b := make([]byte, 3)
	rand.Read(b) //nolint:errcheck
	ns := prefix + hex.EncodeToString(b)
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() }) //nolint:errcheck
	ip("-n", ns, "link", "add", "seg", "type", "veth", "peer", "name", "seg-peer")
	ip("-n", ns, "link", "set", "seg-peer", "up")
	ip("-n", ns, "addr", "add", "198.51.100.1/24", "dev", "seg")
	ip("-n", ns, "link", "set", "seg", "up")
	return ns, ip
}
