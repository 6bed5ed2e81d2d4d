package ovs_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/ovs/ovstest"
)

// Replace with keep tables: the table becomes the flows given, a changed
// flow is changed, a flow no longer given goes, and flows of a keep table
// that OVS holds but the caller does not list (learned ones) stay.
func TestReplaceKeepsLearnedFlows(t *testing.T) {
	sw := ovstest.Start(t, 0)
	o := sw.OFCtl()
	ctx := context.Background()
	base := []string{
		"table=0,priority=100,ip actions=goto_table:4",
		"table=0,priority=0 actions=drop",
		"table=4,priority=0 actions=goto_table:5",
		"table=5,priority=100,cookie=0x7,tcp,nw_dst=100.64.0.10,tp_dst=80 actions=set_field:0x1->reg1,goto_table:6",
		"table=5,priority=90,ip,nw_dst=100.64.0.11 actions=drop",
		"table=6,priority=0 actions=drop",
	}
	if err := o.Replace(ctx, base, 4); err != nil {
		t.Fatal(err)
	}
	// What the learn action would add.
	learned := "table=4,priority=200,idle_timeout=300,tcp,nw_src=100.96.1.5,nw_dst=100.64.0.10,tp_dst=80 actions=load:0x1->NXM_NX_REG0[2]"
	if out, err := sw.Cmd("ovs-ofctl", "-O", "OpenFlow13", "add-flow", "unix:"+sw.Dir+"/"+sw.Bridge+".mgmt", learned); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	next := []string{
		"table=0,priority=100,ip actions=goto_table:4",
		"table=0,priority=0 actions=drop",
		"table=4,priority=0 actions=goto_table:5",
		"table=5,priority=100,cookie=0x7,tcp,nw_dst=100.64.0.10,tp_dst=80 actions=set_field:0x2->reg1,goto_table:6", // changed
		"table=5,priority=100,udp,nw_dst=100.64.0.10,tp_dst=53 actions=goto_table:6",                                // new
		"table=6,priority=0 actions=drop",
	}
	if err := o.Replace(ctx, next, 4); err != nil {
		t.Fatal(err)
	}
	got, err := o.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"set_field:0x2->reg1", "udp,nw_dst=100.64.0.10,tp_dst=53", "idle_timeout=300", "nw_src=100.96.1.5"} {
		if !strings.Contains(all, want) {
			t.Errorf("after Replace, no flow with %q:\n%s", want, all)
		}
	}
	for _, gone := range []string{"set_field:0x1->reg1", "nw_dst=100.64.0.11"} {
		if strings.Contains(all, gone) {
			t.Errorf("after Replace, a flow with %q is left:\n%s", gone, all)
		}
	}
	if len(got) != len(next)+1 {
		t.Errorf("%d flows, want %d and the learned one:\n%s", len(got), len(next), all)
	}
	// Idempotent: nothing left to change.
	if err := o.Replace(ctx, next, 4); err != nil {
		t.Fatal(err)
	}
	again, _ := o.Dump(ctx)
	if !slices.Equal(got, again) {
		t.Errorf("a second Replace changed the table:\n%s\n--\n%s", all, strings.Join(again, "\n"))
	}
	// A change to table 0's default (printed without its table) changes
	// only that flow.
	next[1] = "table=0,priority=0 actions=goto_table:6"
	if err := o.Replace(ctx, next, 4); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Dump(ctx); len(got) != len(next)+1 || !strings.Contains(strings.Join(got, "\n"), "table=6, priority=0 actions=drop") {
		t.Errorf("changing table 0's default touched others:\n%s", strings.Join(got, "\n"))
	}
	// Without keep tables, Replace is replace-flows: the learned flow goes.
	if err := o.Replace(ctx, next); err != nil {
		t.Fatal(err)
	}
	if plain, _ := o.Dump(ctx); len(plain) != len(next) {
		t.Errorf("replace-flows kept %d flows, want %d", len(plain), len(next))
	}
}

// diff-flows' own output (OVS 3.1, captured from the test above).
func TestBundleFromDiff(t *testing.T) {
	diff := `-priority=0 actions=NORMAL
+priority=0 actions=drop
-table=4 priority=200,tcp,nw_src=100.96.1.5,nw_dst=100.64.0.10,tp_dst=80 idle_timeout=300 actions=load:0x1->NXM_NX_REG0[2]
-table=5 priority=100,tcp,nw_dst=100.64.0.10,tp_dst=80 cookie=0x7 actions=set_field:0x1->reg1,goto_table:6
+table=5 priority=100,tcp,nw_dst=100.64.0.10,tp_dst=80 cookie=0x7 actions=set_field:0x2->reg1,goto_table:6
-table=5 priority=90,ip,nw_dst=100.64.0.11 actions=drop
`
	got, err := ovs.BundleFromDiff(diff, []int{4})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"delete_strict table=0,priority=0",
		"delete_strict table=5,priority=100,tcp,nw_dst=100.64.0.10,tp_dst=80",
		"delete_strict table=5,priority=90,ip,nw_dst=100.64.0.11",
		"add priority=0 actions=drop",
		"add table=5 priority=100,tcp,nw_dst=100.64.0.10,tp_dst=80 cookie=0x7 actions=set_field:0x2->reg1,goto_table:6",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := ovs.BundleFromDiff("?what\n", nil); err == nil {
		t.Fatal("an unreadable diff line was accepted")
	}
}
