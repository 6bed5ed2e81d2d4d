package pipeline

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/policy/rules"
)

type fakePorts []ovs.Port

func (fakePorts) Barrier(context.Context) error                       { return nil }
func (f fakePorts) Ports(context.Context, string) ([]ovs.Port, error) { return f, nil }

type fakeTable struct{ flows []string }

func (f *fakeTable) Replace(_ context.Context, flows []string, _ ...int) error {
	f.flows = flows
	return nil
}

// The rules file decides nothing open: missing, the table has the guard and
// no other policy, and says so; unreadable, nothing is installed (the last
// readable policy stays) and Sync fails.
func TestSyncFailsClosed(t *testing.T) {
	dir := t.TempDir()
	ports := fakePorts{
		{Name: "t1r-gw0", OFPort: 1, MAC: "02:00:00:00:00:01", ExternalIDs: map[string]string{KeyGateway: "true", KeyIPs: "100.96.1.1"}},
		{Name: "t1rabc", OFPort: 5, ExternalIDs: map[string]string{KeyContainerID: "c1", KeyPodNamespace: "x", KeyPodName: "web",
			KeyIPs: "100.96.1.10", KeyMAC: "02:00:00:00:00:0a"}},
	}
	g := Guard{CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}}
	ctx := context.Background()
	guardDrop := "table=9,priority=10,cookie=0x7470000000000000,ip,nw_dst=203.0.113.0/28 actions=drop"

	table := &fakeTable{}
	res, err := Sync(ctx, dir, "br-int", g, ports, table, nil)
	if err != nil || !res.PolicyMissing || res.PolicyError != nil {
		t.Fatalf("missing rules: %+v, %v", res, err)
	}
	if !strings.Contains(strings.Join(table.flows, "\n"), guardDrop) {
		t.Fatalf("missing rules: no guard drop in\n%s", strings.Join(table.flows, "\n"))
	}

	// A readable file: installed, not missing.
	if err := rules.WriteFile(PolicyFile(dir), &rules.Set{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if res, err := Sync(ctx, dir, "br-int", g, ports, table, nil); err != nil || res.PolicyMissing {
		t.Fatalf("readable rules: %+v, %v", res, err)
	}
	installed := table.flows

	if err := os.WriteFile(PolicyFile(dir), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	table.flows = []string{"untouched"}
	res, err = Sync(ctx, dir, "br-int", g, ports, table, nil)
	if !errors.Is(err, ErrPolicyUnreadable) || res.PolicyError == nil {
		t.Fatalf("unreadable rules: %+v, %v", res, err)
	}
	if len(table.flows) != 1 || table.flows[0] != "untouched" {
		t.Fatalf("unreadable rules replaced the table (%d flows; it had %d)", len(table.flows), len(installed))
	}
}
