package neighbors

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

var cidrs = []netip.Prefix{netip.MustParsePrefix("100.96.1.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}

func e(ip, mac string) Entry { return Entry{IP: netip.MustParseAddr(ip), MAC: mac} }

func TestDesired(t *testing.T) {
	pods := []pipeline.PodPort{
		{Name: "a", MAC: "0A:58:64:60:01:02", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.2"), netip.MustParseAddr("2001:db8:1::2")}},
		// An address outside the node's podCIDRs (a pod from before a
		// podCIDR change) is not routed through the gateway by this node.
		{Name: "b", MAC: "0a:58:64:60:09:02", IPs: []netip.Addr{netip.MustParseAddr("100.96.9.2")}},
	}
	got := Desired(pods, cidrs)
	want := []Entry{e("100.96.1.2", "0a:58:64:60:01:02"), e("2001:db8:1::2", "0a:58:64:60:01:02")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Desired = %v, want %v", got, want)
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name             string
		desired, actual  []Entry
		wantSet, wantDel []Entry
	}{
		{name: "nothing"},
		{name: "new pods are set",
			desired: []Entry{e("100.96.1.3", "0a:00:00:00:00:03"), e("100.96.1.2", "0a:00:00:00:00:02")},
			wantSet: []Entry{e("100.96.1.2", "0a:00:00:00:00:02"), e("100.96.1.3", "0a:00:00:00:00:03")}},
		{name: "in place: nothing to do",
			desired: []Entry{e("100.96.1.2", "0a:00:00:00:00:02")},
			actual:  []Entry{e("100.96.1.2", "0A:00:00:00:00:02")}},
		{name: "an address reused by a pod with another MAC is set again",
			desired: []Entry{e("100.96.1.2", "0a:00:00:00:00:99")},
			actual:  []Entry{e("100.96.1.2", "0a:00:00:00:00:02")},
			wantSet: []Entry{e("100.96.1.2", "0a:00:00:00:00:99")}},
		{name: "a deleted pod's entry goes, in either family",
			actual:  []Entry{e("100.96.1.2", "0a:00:00:00:00:02"), e("2001:db8:1::2", "0a:00:00:00:00:02")},
			wantDel: []Entry{e("100.96.1.2", "0a:00:00:00:00:02"), e("2001:db8:1::2", "0a:00:00:00:00:02")}},
		{name: "entries outside the podCIDRs are someone else's: never deleted",
			actual: []Entry{e("198.51.100.7", "0a:00:00:00:00:07"), e("2001:db8:2::7", "0a:00:00:00:00:07")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, del := Diff(tc.desired, tc.actual, cidrs)
			if !reflect.DeepEqual(set, tc.wantSet) || !reflect.DeepEqual(del, tc.wantDel) {
				t.Fatalf("Diff = set %v, delete %v; want set %v, delete %v", set, del, tc.wantSet, tc.wantDel)
			}
		})
	}
}

// fakeTable is a stateful neighbour table; failSet makes Set fail for one address.
type fakeTable struct {
	entries map[netip.Addr]string
	failSet netip.Addr
}

func (f *fakeTable) Permanent(context.Context) ([]Entry, error) {
	var out []Entry
	for ip, mac := range f.entries {
		out = append(out, Entry{IP: ip, MAC: mac})
	}
	return out, nil
}

func (f *fakeTable) Set(_ context.Context, e Entry) error {
	if e.IP == f.failSet {
		return errors.New("refused")
	}
	f.entries[e.IP] = e.MAC
	return nil
}

func (f *fakeTable) Delete(_ context.Context, e Entry) error {
	delete(f.entries, e.IP)
	return nil
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	tab := &fakeTable{entries: map[netip.Addr]string{
		netip.MustParseAddr("100.96.1.9"):   "0a:00:00:00:00:09", // a pod that went
		netip.MustParseAddr("198.51.100.1"): "0a:00:00:00:00:01", // not ours
	}}
	pods := []pipeline.PodPort{
		{MAC: "0a:00:00:00:00:02", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.2")}},
		{MAC: "0a:00:00:00:00:03", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.3")}},
	}
	tab.failSet = netip.MustParseAddr("100.96.1.3")
	set, deleted, err := Sync(ctx, tab, pods, cidrs)
	if set != 1 || deleted != 1 || err == nil {
		t.Fatalf("Sync = %d set, %d deleted, %v; want 1, 1 and the error of 100.96.1.3", set, deleted, err)
	}
	tab.failSet = netip.Addr{}
	if set, deleted, err = Sync(ctx, tab, pods, cidrs); set != 1 || deleted != 0 || err != nil {
		t.Fatalf("second Sync = %d set, %d deleted, %v; want the one that failed set", set, deleted, err)
	}
	if set, deleted, err = Sync(ctx, tab, pods, cidrs); set != 0 || deleted != 0 || err != nil {
		t.Fatalf("third Sync = %d set, %d deleted, %v; want nothing to do", set, deleted, err)
	}
	got, _ := tab.Permanent(ctx)
	slices.SortFunc(got, func(a, b Entry) int { return a.IP.Compare(b.IP) })
	want := []Entry{e("100.96.1.2", "0a:00:00:00:00:02"), e("100.96.1.3", "0a:00:00:00:00:03"), e("198.51.100.1", "0a:00:00:00:00:01")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("table = %v, want %v", got, want)
	}
}
