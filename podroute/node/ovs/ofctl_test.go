package ovs

import (
	"fmt"
	"reflect"
	"testing"
)

func TestParseFlowStats(t *testing.T) {
	const tag, mask uint64 = 0x7470 << 48, 0xffff << 48
	dump := fmt.Sprintf(`OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x7470000000000000, duration=1.2s, table=1, n_packets=99, n_bytes=9000, priority=100,ip actions=ct(table=2,zone=7)
 cookie=%#x, duration=1.2s, table=4, n_packets=7, n_bytes=600, priority=100,in_port=11 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=3, n_bytes=200, priority=100,ip,nw_dst=100.96.1.2 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=2, n_bytes=200, priority=100,ipv6,ipv6_dst=2001:db8::2 actions=drop
 cookie=0x5, duration=1.2s, table=0, n_packets=1000, n_bytes=9000, priority=0 actions=drop
`, tag|1, tag|2, tag|2)
	got := ParseFlowStats(dump, tag, mask)
	want := map[uint64]uint64{tag | 1: 7, tag | 2: 5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
