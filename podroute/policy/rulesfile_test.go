package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/t1route/t1route/podroute/policy/rules"
)

func TestRuleSetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "rules.json")
	if rs, err := rules.ReadFile(path); rs != nil || err != nil {
		t.Fatalf("missing file: %v %v", rs, err)
	}
	c := fixture()
	c.SetNetworkPolicy(netpol("x", "p", fixtureSpecWithEverything()))
	rs := Compile(c, "n1")
	if err := rules.WriteFile(path, rs); err != nil {
		t.Fatal(err)
	}
	back, err := rules.ReadFile(path)
	if err != nil || !reflect.DeepEqual(back, rs) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, rs)
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := rules.ReadFile(path); err == nil {
		t.Fatal("a broken file was read")
	}
}

func TestParseFlowStats(t *testing.T) {
	dump := fmt.Sprintf(`OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x7470000000000000, duration=1.2s, table=1, n_packets=99, n_bytes=9000, priority=100,ip actions=ct(table=2,zone=7)
 cookie=%#x, duration=1.2s, table=4, n_packets=7, n_bytes=600, priority=100,in_port=11 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=3, n_bytes=200, priority=100,ip,nw_dst=100.96.1.2 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=2, n_bytes=200, priority=100,ipv6,ipv6_dst=2001:db8::2 actions=drop
 cookie=0x5, duration=1.2s, table=0, n_packets=1000, n_bytes=9000, priority=0 actions=drop
`, rules.CookieTag|1, rules.CookieTag|2, rules.CookieTag|2)
	got := rules.ParseFlowStats(dump)
	want := map[uint64]uint64{rules.CookieTag | 1: 7, rules.CookieTag | 2: 5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
