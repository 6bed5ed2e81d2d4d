package introspect

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// Match fields that hold a MAC or an address of one host.
var (
	macFields = map[string]bool{"dl_src": true, "dl_dst": true, "eth_src": true, "eth_dst": true,
		"arp_sha": true, "arp_tha": true, "nd_sll": true, "nd_tll": true}
	ipFields = map[string]bool{"nw_src": true, "nw_dst": true, "ip_src": true, "ip_dst": true,
		"arp_spa": true, "arp_tpa": true, "ipv6_src": true, "ipv6_dst": true, "nd_target": true}
)

// podKeys is what identifies a pod's traffic in flows.
type podKeys struct {
	ofport string
	mac    string
	ips    map[netip.Addr]bool
}

func keysOf(p PodInterface) podKeys {
	k := podKeys{ips: map[netip.Addr]bool{}}
	if p.OFPort > 0 {
		k.ofport = strconv.Itoa(p.OFPort)
	}
	if mac, err := net.ParseMAC(p.MAC); err == nil {
		k.mac = mac.String()
	}
	for _, s := range p.IPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			k.ips[ip.Unmap()] = true
		}
	}
	return k
}

// CarriesPod reports whether a flow carries the pod's traffic: it matches
// the pod's OpenFlow port, its MAC or one of its addresses (as one host,
// not inside a wider prefix), or it sends out of the pod's port or to its
// MAC. These are the flows an operator reads when the pod is unreachable.
func CarriesPod(f Flow, p PodInterface) bool { return keysOf(p).carried(f) }

func (k podKeys) carried(f Flow) bool {
	for _, fl := range MatchFields(f.Match) {
		switch {
		case fl.Key == "in_port" && k.ofport != "" && fl.Value == k.ofport:
			return true
		case macFields[fl.Key] && k.mac != "" && sameMAC(fl.Value, k.mac):
			return true
		case ipFields[fl.Key] && k.hasHost(fl.Value):
			return true
		}
	}
	for _, a := range ovs.SplitTop(f.Actions) {
		if k.ofport != "" && a == "output:"+k.ofport {
			return true
		}
		if v, ok := strings.CutPrefix(a, "set_field:"); ok && k.mac != "" {
			if val, field, ok := strings.Cut(v, "->"); ok && macFields[field] && sameMAC(val, k.mac) {
				return true
			}
		}
	}
	return false
}

func sameMAC(s, mac string) bool {
	m, err := net.ParseMAC(s)
	return err == nil && m.String() == mac
}

// hasHost: the value is one of the pod's addresses, bare or as a /32 or /128.
func (k podKeys) hasHost(v string) bool {
	if ip, err := netip.ParseAddr(v); err == nil {
		return k.ips[ip.Unmap()]
	}
	if p, err := netip.ParsePrefix(v); err == nil && p.IsSingleIP() {
		return k.ips[p.Addr().Unmap()]
	}
	return false
}

// PodFlows returns the flows that carry any of the pods, in order.
func PodFlows(flows []Flow, pods ...PodInterface) []Flow {
	keys := make([]podKeys, len(pods))
	for i, p := range pods {
		keys[i] = keysOf(p)
	}
	var out []Flow
	for _, f := range flows {
		for _, k := range keys {
			if k.carried(f) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// TableFlowsOf returns the flows of one table, in order.
func TableFlowsOf(flows []Flow, table int) []Flow {
	var out []Flow
	for _, f := range flows {
		if f.Table == table {
			out = append(out, f)
		}
	}
	return out
}

// NameTables fills each flow's TableName from the pipeline's tables.
func NameTables(flows []Flow, tables Tables) {
	for i := range flows {
		flows[i].TableName = tables.Name(flows[i].Table)
	}
}

// SortFlows orders flows as ovs-ofctl --sort would read best: by table,
// then priority (highest first), then match.
func SortFlows(flows []Flow) {
	sort.SliceStable(flows, func(i, j int) bool {
		a, b := flows[i], flows[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Match < b.Match
	})
}

// CountPerTable counts flows and matched packets per table: every table of
// the pipeline (an empty one as 0) and any other table that has flows.
func CountPerTable(flows []Flow, tables Tables) []TableFlows {
	byID := map[int]*TableFlows{}
	for _, t := range tables {
		byID[t.ID] = &TableFlows{Table: t.ID, Name: t.Name}
	}
	for _, f := range flows {
		c := byID[f.Table]
		if c == nil {
			c = &TableFlows{Table: f.Table, Name: tables.Name(f.Table)}
			byID[f.Table] = c
		}
		c.Flows++
		c.Packets += f.Packets
	}
	out := make([]TableFlows, 0, len(byID))
	for _, c := range byID {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}
