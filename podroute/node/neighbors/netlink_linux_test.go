//go:build linux

package neighbors

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestLinkInANamespace runs Link against the kernel, in a network
// namespace of its own (root only): entries set are permanent, survive the
// link losing its carrier (why they exist), and are deleted.
func TestLinkInANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace)")
	}
	runtime.LockOSThread() // this thread only; it ends with the test (not unlocked)
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	defer netns.Set(orig) //nolint:errcheck

	// A veth pair stands in for the gateway: taking its peer down drops its carrier.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gw0"}, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gw0", "peer0"} {
		l, _ := netlink.LinkByName(n)
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	gw, _ := netlink.LinkByName("gw0")
	if err := netlink.AddrAdd(gw, &netlink.Addr{IPNet: netlink.NewIPNet(netip.MustParseAddr("100.96.1.1").AsSlice())}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := Link{Name: "gw0"}
	want := []Entry{e("100.96.1.2", "0a:00:00:00:00:02"), e("2001:db8:1::2", "0a:00:00:00:00:02")}
	for _, x := range want {
		if err := l.Set(ctx, x); err != nil {
			t.Fatalf("Set %v: %v", x, err)
		}
		if err := l.Set(ctx, x); err != nil { // idempotent
			t.Fatalf("Set %v again: %v", x, err)
		}
	}
	peer, _ := netlink.LinkByName("peer0")
	if err := netlink.LinkSetDown(peer); err != nil { // gw0 loses its carrier, as a tap does when its switch stops
		t.Fatal(err)
	}
	got, err := l.Permanent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after the carrier loss Permanent = %v, want %v", got, want)
	}
	for _, x := range want {
		if err := l.Delete(ctx, x); err != nil {
			t.Fatalf("Delete %v: %v", x, err)
		}
		if err := l.Delete(ctx, x); err != nil {
			t.Fatalf("Delete %v when absent: %v", x, err)
		}
	}
	if got, _ := l.Permanent(ctx); len(got) != 0 {
		t.Fatalf("after Delete Permanent = %v", got)
	}
}
