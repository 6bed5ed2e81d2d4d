package ofsim

import (
	"net/netip"
	"strings"
	"testing"
)

var base = []string{
	"table=0,priority=100,ip actions=ct(table=1,zone=1)",
	"table=1,priority=200,ct_state=+est+rpl+trk actions=goto_table:9",
	"table=1,priority=200,ip,nw_dst=100.96.1.3 actions=conjunction(7,1/3)",
	"table=1,priority=200,ip,nw_src=100.96.1.2 actions=conjunction(7,2/3),conjunction(8,1/2)",
	"table=1,priority=200,tcp,tp_dst=0x1f90/0xfff0 actions=conjunction(7,3/3)",
	"table=1,priority=200,udp,tp_dst=53 actions=conjunction(8,2/2)",
	"table=1,priority=200,cookie=0x7,conj_id=7 actions=ct(commit,zone=1),goto_table:9",
	"table=1,priority=200,cookie=0x8,conj_id=8 actions=goto_table:9",
	"table=1,priority=100,cookie=0x64,ip,nw_dst=100.96.1.3 actions=drop",
	"table=1,priority=0 actions=goto_table:9",
}

func TestRun(t *testing.T) {
	sw, err := Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := netip.MustParseAddr("100.96.1.2"), netip.MustParseAddr("100.96.1.3"), netip.MustParseAddr("100.96.1.4")
	cases := []struct {
		name      string
		p         Packet
		forwarded bool
		committed bool
		cookie    uint64
	}{
		{"all three clauses: conjunction 7", Packet{Src: a, Dst: b, Proto: 6, DstPort: 8085, CT: CT{New: true}}, true, true, 7},
		{"port outside the mask: falls through to the drop", Packet{Src: a, Dst: b, Proto: 6, DstPort: 8096, CT: CT{New: true}}, false, false, 0x64},
		{"two clauses of two: conjunction 8", Packet{Src: a, Dst: b, Proto: 17, DstPort: 53, CT: CT{New: true}}, true, false, 8},
		{"no conjunction, no drop: the default", Packet{Src: c, Dst: a, Proto: 6, DstPort: 8085, CT: CT{New: true}}, true, false, 0},
		{"a reply skips everything", Packet{Src: b, Dst: a, Proto: 6, DstPort: 40000, CT: CT{Est: true, Rpl: true}}, true, false, 0},
		{"IPv6 does not match IPv4 flows", Packet{Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::3"), Proto: 6, DstPort: 8085}, false, false, 0},
	}
	for _, tc := range cases {
		res, err := sw.Run(tc.p, 0, 9)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		last := uint64(0)
		if len(res.Cookies) > 0 {
			last = res.Cookies[len(res.Cookies)-1]
		}
		if res.Forwarded != tc.forwarded || res.Committed != tc.committed || (res.Forwarded || len(res.Cookies) > 1) && last != tc.cookie {
			t.Errorf("%s: forwarded %v committed %v cookie %#x; want %v %v %#x\n%s", tc.name, res.Forwarded, res.Committed, last,
				tc.forwarded, tc.committed, tc.cookie, strings.Join(res.Trace, "\n"))
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, bad := range [][]string{
		{"table=0,priority=1,tp_dst=80 actions=drop"},                                        // no protocol
		{"table=0,priority=1,nw_dst=2001:db8::1 actions=drop"},                               // wrong family, no ip
		{"table=0,priority=1,ip,dl_vlan=5 actions=drop"},                                     // unknown field
		{"table=0,priority=1,ip actions=mod_nw_tos:4"},                                       // unknown action
		{"table=0,priority=1,ip actions=conjunction(1,1/2),drop"},                            // conjunction with others
		{"table=0,priority=1,ip actions=conjunction(1,3/2)"},                                 // clause beyond n
		{"table=0,priority=1,ip actions=drop", "table=0,priority=1,ip actions=goto_table:3"}, // duplicate match
		{"table=0,priority=1,ct_state=+bogus actions=drop"},
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestAmbiguityIsAnError(t *testing.T) {
	sw, err := Parse([]string{
		"table=0,priority=5,ip,nw_src=100.96.1.0/24 actions=drop",
		"table=0,priority=5,ip,nw_dst=100.96.1.0/24 actions=goto_table:9",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("100.96.1.2")
	if _, err := sw.Run(Packet{Src: a, Dst: a, Proto: 1}, 0, 9); err == nil {
		t.Error("two different flows deciding at one priority passed unnoticed")
	}
}
