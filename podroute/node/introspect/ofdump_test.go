package introspect

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The testdata dumps were captured from Open vSwitch 3.1 (userspace
// datapath) with `ovs-ofctl -O OpenFlow13 --no-names dump-flows`, after
// t1route's own Sync had installed the pipeline for a dual-stack gateway and
// two pods and pings had run: dump-dualstack-2pods.txt. dump-variety.txt
// holds flows added by hand to cover what the pipeline does not use yet
// (cookies, timeouts, flags, default priority, nested actions).
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFlowsRealDumps(t *testing.T) {
	cases := []struct {
		file  string
		count int
		want  []Flow // each must be among the parsed flows (Duration ignored)
	}{
		{"dump-dualstack-2pods.txt", 35, []Flow{
			{Table: 0, Priority: 210, Match: "icmp6,in_port=1,icmp_type=135", Actions: "goto_table:10", Packets: 1, Bytes: 86},
			{Table: 0, Priority: 0, Match: "", Actions: "drop", Packets: 16, Bytes: 1312},
			{Table: 11, Priority: 190, Match: "icmp6,icmp_type=136,nd_target=2001:db8:96:1::2",
				Actions: "set_field:0a:58:64:60:01:02->nd_tll,set_field:1610612736->nd_reserved,set_field:2->nd_options_type,IN_PORT", Packets: 1, Bytes: 86},
			{Table: 20, Priority: 200, Match: "ip,nw_dst=100.96.1.2",
				Actions: "set_field:ee:79:86:de:79:e0->eth_src,set_field:0a:58:64:60:01:02->eth_dst,output:2", Packets: 4, Bytes: 392},
		}},
		{"dump-variety.txt", 7, []Flow{
			{Table: 99, Priority: DefaultPriority, Match: "ip,nw_dst=203.0.113.0/24", Actions: "conjunction(3,1/2),conjunction(4,2/2)"},
			{Table: 99, Priority: 300, Cookie: 0x7470000000000005, IdleTimeout: 30, HardTimeout: 60, Flags: "send_flow_rem,reset_counts",
				Match: "tcp,nw_src=100.96.1.2,tp_dst=0x50/0xfff0", Actions: "ct(commit,zone=5,exec(set_field:0x1->ct_mark)),goto_table:100"},
			{Table: 99, Priority: 6, Match: "reg0=0x1/0xffff,metadata=0x5", Actions: "set_field:0x2->reg1,resubmit(,100)"},
			{Table: 99, Priority: 7, Match: "in_port=3,dl_vlan=5", Actions: "drop"},
			{Table: 1, Priority: 1, Actions: "drop"},
		}},
		{"dump-empty.txt", 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			flows, err := ParseFlows(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(flows) != tc.count {
				t.Fatalf("%d flows, want %d", len(flows), tc.count)
			}
			for _, w := range tc.want {
				found := false
				for _, f := range flows {
					if f.Duration <= 0 {
						t.Fatalf("flow without duration: %+v", f)
					}
					f.Duration = 0
					if f == w {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %+v", w)
				}
			}
		})
	}
}

// The per-table counts agree with counting the dump's lines by their
// table=N, and packets add up: the figures agentinfo shows are the dump's.
func TestCountPerTableAgreesWithDump(t *testing.T) {
	dump := readTestdata(t, "dump-dualstack-2pods.txt")
	flows, err := ParseFlows(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{}
	wantPackets := map[int]uint64{}
	re := regexp.MustCompile(`table=(\d+), n_packets=(\d+)`)
	for _, m := range re.FindAllStringSubmatch(dump, -1) {
		id, _ := strconv.Atoi(m[1])
		p, _ := strconv.ParseUint(m[2], 10, 64)
		want[id]++
		wantPackets[id] += p
	}
	tables := Tables{{ID: 0, Name: "Classifier"}, {ID: 10, Name: "NeighborResponder"}, {ID: 11, Name: "NDAdvertisement"},
		{ID: 20, Name: "L3Forwarding"}, {ID: 30, Name: "Unused"}}
	got := CountPerTable(flows, tables)
	if len(got) != 5 {
		t.Fatalf("%d tables, want the pipeline's 5: %+v", len(got), got)
	}
	for _, c := range got {
		if c.Flows != want[c.Table] || c.Packets != wantPackets[c.Table] || c.Name != tables.Name(c.Table) {
			t.Errorf("table %d %s: %d flows %d packets, want %d and %d", c.Table, c.Name, c.Flows, c.Packets, want[c.Table], wantPackets[c.Table])
		}
	}
	if got[4].Table != 30 || got[4].Flows != 0 {
		t.Errorf("an empty pipeline table must show as 0: %+v", got[4])
	}
}

func TestParseFlowsRejectsWhatItCannotRead(t *testing.T) {
	cases := []struct{ name, dump, wantErr string }{
		{"no statistics (--no-stats)", " priority=210,icmp6,in_port=1 actions=goto_table:10\n", "line 1"},
		{"port names (--names)", "OFPST_FLOW reply (OF1.3) (xid=0x2):\n cookie=0x0, duration=1s, table=classify, n_packets=0, n_bytes=0, priority=1 actions=drop\n", "not a number"},
		{"no actions", " cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, priority=1\n", "no actions"},
		{"bad counter", " cookie=0x0, duration=1s, table=0, n_packets=-1, n_bytes=0, priority=1 actions=drop\n", "n_packets"},
		{"bad priority", " cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, priority=high,ip actions=drop\n", "priority"},
		{"an error message", "ovs-ofctl: br-int is not a bridge or a socket\n", "line 1"},
		{"two matches", " cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, ip arp actions=drop\n", "unexpected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFlows(tc.dump)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseFlowsOlderFormats(t *testing.T) {
	// OpenFlow 1.0 dumps carry ages, and table 0 may be left out.
	line := " cookie=0x2a, duration=5.5s, n_packets=3, n_bytes=180, idle_age=2, hard_age=4, priority=5,arp actions=NORMAL\n"
	flows, err := ParseFlows(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Flow{Table: 0, Priority: 5, Cookie: 42, Match: "arp", Actions: "NORMAL", Packets: 3, Bytes: 180, Duration: 5.5}
	if len(flows) != 1 || flows[0] != want {
		t.Fatalf("got %+v, want %+v", flows, want)
	}
}

func TestCookieJSON(t *testing.T) {
	f := Flow{Cookie: 0x7470000000000005}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cookie":"0x7470000000000005"`) {
		t.Fatalf("cookie not written as hex: %s", b)
	}
	var back Flow
	if err := json.Unmarshal(b, &back); err != nil || back.Cookie != f.Cookie {
		t.Fatalf("round trip: %v %#x", err, uint64(back.Cookie))
	}
}

func TestParseOVSVersion(t *testing.T) {
	v, err := ParseOVSVersion(readTestdata(t, "dump-desc.txt"))
	if err != nil || v != "3.1.0" {
		t.Fatalf("version %q, %v", v, err)
	}
	if _, err := ParseOVSVersion("ovs-ofctl: unix:/x/br-int.mgmt: failed to connect\n"); err == nil {
		t.Fatal("no error for output without a version")
	}
}

// BenchmarkParseFlows: a node with 250 dual-stack pods has about 2,500
// flows; agentinfo and each summary publication parse a full dump.
func BenchmarkParseFlows(b *testing.B) {
	raw, err := os.ReadFile("testdata/dump-dualstack-2pods.txt")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")[1:]
	var dump strings.Builder
	for dump.Len() == 0 || strings.Count(dump.String(), "\n") < 2500 {
		for _, l := range lines {
			dump.WriteString(l + "\n")
		}
	}
	in := dump.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		flows, err := ParseFlows(in)
		if err != nil || len(flows) < 2500 {
			b.Fatal(len(flows), err)
		}
	}
}
