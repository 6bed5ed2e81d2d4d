package introspect

import (
	"strings"
	"testing"
)

// The pods of dump-dualstack-2pods.txt, as the CNI plugin attached them.
var (
	pod1 = PodInterface{Namespace: "default", Pod: "pod-p1", Interface: "t1ihp1", OFPort: 2, MAC: "0a:58:64:60:01:02",
		IPs: []string{"100.96.1.2", "2001:db8:96:1::2"}}
	pod2 = PodInterface{Namespace: "default", Pod: "pod-p2", Interface: "t1ihp2", OFPort: 3, MAC: "0a:58:64:60:01:03",
		IPs: []string{"100.96.1.3", "2001:db8:96:1::3"}}
)

// flowsPerDualStackPod is the pipeline's count (podroute/datapath
// FlowsPerDualStackPod): a pod's flows are exactly those.
const flowsPerDualStackPod = 10

func TestPodFlowsAreExactlyThePodsOwn(t *testing.T) {
	flows, err := ParseFlows(readTestdata(t, "dump-dualstack-2pods.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pod, other PodInterface
	}{{pod1, pod2}, {pod2, pod1}} {
		t.Run(tc.pod.Pod, func(t *testing.T) {
			got := PodFlows(flows, tc.pod)
			if len(got) != flowsPerDualStackPod {
				t.Fatalf("%d flows, want %d:\n%s", len(got), flowsPerDualStackPod, flowLines(got))
			}
			perTable := map[int]int{}
			for _, f := range got {
				perTable[f.Table]++
				s := f.String()
				if strings.Contains(s, tc.other.MAC) || strings.Contains(s, tc.other.IPs[0]+" ") || strings.Contains(s, "in_port=1,") {
					t.Errorf("flow of another pod or the gateway: %s", s)
				}
			}
			// spoof guard 5 (IPv4, ARP, IPv6, two solicitations), responder 2, advert 1, forward 2
			want := map[int]int{0: 5, 10: 2, 11: 1, 20: 2}
			for table, n := range want {
				if perTable[table] != n {
					t.Errorf("table %d: %d flows, want %d:\n%s", table, perTable[table], n, flowLines(got))
				}
			}
		})
	}
	if both := PodFlows(flows, pod1, pod2); len(both) != 2*flowsPerDualStackPod {
		t.Errorf("two pods: %d flows, want %d", len(both), 2*flowsPerDualStackPod)
	}
}

func TestCarriesPod(t *testing.T) {
	p := PodInterface{OFPort: 7, MAC: "0A:58:64:60:01:07", IPs: []string{"100.96.1.7", "2001:db8:96:1::7"}}
	cases := []struct {
		name string
		flow Flow
		want bool
	}{
		{"its port", Flow{Match: "ip,in_port=7", Actions: "drop"}, true},
		{"another port whose number starts alike", Flow{Match: "ip,in_port=70", Actions: "drop"}, false},
		{"its MAC, any case", Flow{Match: "dl_dst=0a:58:64:60:01:07", Actions: "drop"}, true},
		{"its IPv4 address as a host prefix", Flow{Match: "ip,nw_src=100.96.1.7/32", Actions: "drop"}, true},
		{"its IPv6 address written differently", Flow{Match: "ipv6,ipv6_dst=2001:0db8:96:1:0:0:0:7", Actions: "drop"}, true},
		{"a prefix that contains it is not the pod's", Flow{Match: "ip,nw_dst=100.96.1.0/24", Actions: "drop"}, false},
		{"output to its port", Flow{Actions: "set_field:0a:00:00:00:00:01->eth_src,output:7"}, true},
		{"output to another port", Flow{Actions: "output:17"}, false},
		{"rewritten to its MAC", Flow{Match: "ip", Actions: "set_field:0a:58:64:60:01:07->eth_dst,output:1"}, true},
		{"an address in a register value is not an address", Flow{Match: "reg0=0x7", Actions: "drop"}, false},
		{"the gateway's flows are not the pod's", Flow{Match: "ip,in_port=1", Actions: "goto_table:20"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := CarriesPod(tc.flow, p); got != tc.want {
				t.Fatalf("CarriesPod(%s) = %v, want %v", tc.flow, got, tc.want)
			}
		})
	}
	// A port not built yet (ofport 0) must not claim in_port=0 or output:0 flows.
	unbuilt := PodInterface{MAC: "0a:58:64:60:01:08", IPs: []string{"100.96.1.8"}}
	if CarriesPod(Flow{Match: "in_port=0", Actions: "output:0"}, unbuilt) {
		t.Fatal("an unbuilt port claimed port 0's flows")
	}
}

func TestTableResolve(t *testing.T) {
	tables := Tables{{ID: 0, Name: "Classifier"}, {ID: 20, Name: "L3Forwarding"}}
	cases := []struct {
		in      string
		want    int
		wantErr string
	}{
		{"20", 20, ""},
		{"l3forwarding", 20, ""},
		{"Classifier", 0, ""},
		{"7", 7, ""}, // a table the pipeline does not use is empty, not an error
		{"Nope", 0, `unknown table "Nope": the pipeline's tables are 0 Classifier, 20 L3Forwarding`},
		{"300", 0, "numbered 0 to 254"},
	}
	for _, tc := range cases {
		got, err := tables.Resolve(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Resolve(%q): error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tc.want {
			t.Errorf("Resolve(%q) = %+v, %v; want table %d", tc.in, got, err, tc.want)
		}
	}
}

func TestSortFlowsAndTableFilter(t *testing.T) {
	flows, err := ParseFlows(readTestdata(t, "dump-dualstack-2pods.txt"))
	if err != nil {
		t.Fatal(err)
	}
	SortFlows(flows)
	for i := 1; i < len(flows); i++ {
		a, b := flows[i-1], flows[i]
		if a.Table > b.Table || (a.Table == b.Table && a.Priority < b.Priority) {
			t.Fatalf("not sorted at %d: %s then %s", i, a, b)
		}
	}
	t20 := TableFlowsOf(flows, 20)
	if len(t20) != 9 {
		t.Fatalf("table 20: %d flows, want 9", len(t20))
	}
	for _, f := range t20 {
		if f.Table != 20 {
			t.Fatalf("flow of table %d in table 20's", f.Table)
		}
	}
}

func flowLines(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}
