package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/t1route/t1route/podroute/node/policy/rules"
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
