// Package ofsim simulates the part of an Open vSwitch flow table that
// t1route's policy stage uses, so tests can check what flows do to packets
// rather than what they look like: priorities, conjunctive matches (a
// conjunction that does not complete lets lookup continue at lower
// priorities, as in OVS), masked ports, conntrack state and mark, the
// flags register reg0 (set_field and load), goto_table, drop.
//
// It refuses what it does not know (an unknown field or action is an error)
// and reports lookups OVS would resolve arbitrarily (two different flows
// deciding at one priority) as errors, so a test cannot pass on luck.
package ofsim

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// CT is the connection state conntrack gives a packet when ct() runs, and
// the connection's mark.
type CT struct {
	New, Est, Rel, Rpl, Inv bool
	Mark                    uint32
}

// Packet is an IP packet entering the table.
type Packet struct {
	InPort   int
	Src, Dst netip.Addr
	Proto    uint8 // 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6, 132 SCTP
	DstPort  uint16
	CT       CT
	Reg0     uint32 // the flags register, as the packet enters
}

// Result is what happened to a packet.
type Result struct {
	Forwarded bool // reached the stop table or an output action
	Port      int  // the output port, if it left by one
	Committed bool // a ct(commit) ran
	// CommitMark is the connection's mark after the commits (CT.Mark with
	// their set_field:...->ct_mark applied).
	CommitMark uint32
	Reg0       uint32 // the flags register as the packet left
	// Cookies of the flows that decided, in order.
	Cookies []uint64
	Trace   []string
}

type cond struct {
	field string
	val   string
	pfx   netip.Prefix
	num   uint64
	mask  uint64
	fam   int   // protocol matches: 4 or 6
	proto int   // protocol matches: the IP protocol, 0 for any
	on    uint8 // ct_state flags that must be set
	off   uint8 // ct_state flags that must be clear
}

// ct_state flags.
var ctFlags = map[string]uint8{"new": 1, "est": 2, "rel": 4, "rpl": 8, "inv": 16, "trk": 32}

func (p *Packet) ctBits(trk bool) uint8 {
	if !trk {
		return 0
	}
	b := uint8(32)
	for i, on := range [...]bool{p.CT.New, p.CT.Est, p.CT.Rel, p.CT.Rpl, p.CT.Inv} {
		if on {
			b |= 1 << i
		}
	}
	return b
}

type flow struct {
	raw             string
	table, priority int
	cookie          uint64
	conds           []cond
	conjID          uint32
	hasConjID       bool
	actions         []string
	clauses         []clause // conjunction actions
}

type clause struct{ id, k, n uint32 }

// Switch is a parsed flow table.
type Switch struct {
	tables map[int][]*flow // by priority, highest first
}

// Parse reads flows in ovs-ofctl syntax.
func Parse(flows []string) (*Switch, error) {
	s := &Switch{tables: map[int][]*flow{}}
	seen := map[string]string{}
	for _, raw := range flows {
		f, err := parseFlow(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		key := fmt.Sprintf("%d/%d/%s", f.table, f.priority, matchKey(f))
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("two flows with one match and priority (OVS keeps only the last):\n%s\n%s", prev, raw)
		}
		seen[key] = raw
		s.tables[f.table] = append(s.tables[f.table], f)
	}
	for _, fs := range s.tables {
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].priority > fs[j].priority })
	}
	return s, nil
}

func matchKey(f *flow) string {
	var parts []string
	for _, c := range f.conds {
		parts = append(parts, c.field+"="+c.val)
	}
	sort.Strings(parts)
	if f.hasConjID {
		parts = append(parts, fmt.Sprintf("conj_id=%d", f.conjID))
	}
	return strings.Join(parts, ",")
}

var protoOf = map[string][2]int{ // name → family (4/6), protocol (0: any)
	"ip": {4, 0}, "ipv6": {6, 0}, "tcp": {4, 6}, "udp": {4, 17}, "sctp": {4, 132}, "icmp": {4, 1},
	"tcp6": {6, 6}, "udp6": {6, 17}, "sctp6": {6, 132}, "icmp6": {6, 58},
}

func parseFlow(raw string) (*flow, error) {
	match, acts, ok := strings.Cut(raw, " actions=")
	if !ok {
		return nil, fmt.Errorf("no actions")
	}
	f := &flow{raw: raw}
	for _, kv := range ovs.SplitTop(match) {
		k, v, hasVal := strings.Cut(kv, "=")
		var err error
		switch {
		case !hasVal:
			if _, ok := protoOf[k]; !ok {
				return nil, fmt.Errorf("unknown match %q", k)
			}
			f.conds = append(f.conds, cond{field: k, fam: protoOf[k][0], proto: protoOf[k][1]})
		case k == "table":
			f.table, err = strconv.Atoi(v)
		case k == "priority":
			f.priority, err = strconv.Atoi(v)
		case k == "cookie":
			f.cookie, err = strconv.ParseUint(v, 0, 64)
		case k == "conj_id":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			f.conjID, f.hasConjID = uint32(n), true
		case k == "in_port":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			f.conds = append(f.conds, cond{field: k, val: v, num: n})
		case k == "nw_src" || k == "nw_dst" || k == "ipv6_src" || k == "ipv6_dst":
			p, perr := netip.ParsePrefix(v)
			if perr != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return nil, fmt.Errorf("%s: %v", k, perr)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if (k[0] == 'n') != p.Addr().Is4() {
				return nil, fmt.Errorf("%s with address %s of the other family", k, v)
			}
			f.conds = append(f.conds, cond{field: k, val: v, pfx: p})
		case k == "tp_dst":
			c := cond{field: k, val: v, mask: 0xffff}
			num, mask, masked := strings.Cut(v, "/")
			if c.num, err = strconv.ParseUint(num, 0, 16); err == nil && masked {
				c.mask, err = strconv.ParseUint(mask, 0, 16)
			}
			f.conds = append(f.conds, c)
		case k == "ct_mark" || k == "reg0":
			c := cond{field: k, val: v, mask: 0xffffffff}
			num, mask, masked := strings.Cut(v, "/")
			if c.num, err = strconv.ParseUint(num, 0, 32); err == nil && masked {
				c.mask, err = strconv.ParseUint(mask, 0, 32)
			}
			f.conds = append(f.conds, c)
		case k == "ct_state":
			c := cond{field: k, val: v}
			for i := 0; i < len(v); {
				sign := v[i]
				j := i + 1
				for j < len(v) && v[j] != '+' && v[j] != '-' {
					j++
				}
				bit, ok := ctFlags[v[i+1:j]]
				if !ok {
					return nil, fmt.Errorf("unknown ct_state flag %q", v[i+1:j])
				}
				if sign == '+' {
					c.on |= bit
				} else if sign == '-' {
					c.off |= bit
				} else {
					return nil, fmt.Errorf("ct_state %q", v)
				}
				i = j
			}
			f.conds = append(f.conds, c)
		default:
			return nil, fmt.Errorf("unknown match field %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if err := checkPrereqs(f); err != nil {
		return nil, err
	}
	for _, a := range ovs.SplitTop(acts) {
		if strings.HasPrefix(a, "conjunction(") {
			var c clause
			if _, err := fmt.Sscanf(a, "conjunction(%d,%d/%d)", &c.id, &c.k, &c.n); err != nil || c.n < 2 || c.k < 1 || c.k > c.n {
				return nil, fmt.Errorf("bad %q", a)
			}
			f.clauses = append(f.clauses, c)
			continue
		}
		switch {
		case a == "drop", strings.HasPrefix(a, "goto_table:"), strings.HasPrefix(a, "output:"),
			strings.HasPrefix(a, "ct(table="), strings.HasPrefix(a, "ct(commit"):
		case strings.HasPrefix(a, "set_field:") && strings.HasSuffix(a, "->reg0"),
			strings.HasPrefix(a, "load:") && strings.Contains(a, "->NXM_NX_REG0["):
			if _, _, err := setField(a); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown action %q", a)
		}
		f.actions = append(f.actions, a)
	}
	if len(f.clauses) > 0 && len(f.actions) > 0 {
		return nil, fmt.Errorf("conjunction mixed with other actions")
	}
	return f, nil
}

// checkPrereqs refuses what OVS refuses: L3 fields without their
// ethertype, ports without a protocol.
func checkPrereqs(f *flow) error {
	fam, proto := 0, 0
	for _, c := range f.conds {
		if p, ok := protoOf[c.field]; ok {
			fam, proto = p[0], p[1]
		}
	}
	for _, c := range f.conds {
		switch c.field {
		case "nw_src", "nw_dst":
			if fam != 4 {
				return fmt.Errorf("%s needs ip", c.field)
			}
		case "ipv6_src", "ipv6_dst":
			if fam != 6 {
				return fmt.Errorf("%s needs ipv6", c.field)
			}
		case "tp_dst":
			if proto != 6 && proto != 17 && proto != 132 {
				return fmt.Errorf("tp_dst needs tcp, udp or sctp")
			}
		}
	}
	return nil
}

func (c *cond) matches(p *Packet, ct uint8) bool {
	switch c.field {
	case "in_port":
		return uint64(p.InPort) == c.num
	case "nw_src", "ipv6_src":
		return c.pfx.Contains(p.Src)
	case "nw_dst", "ipv6_dst":
		return c.pfx.Contains(p.Dst)
	case "tp_dst":
		return uint64(p.DstPort)&c.mask == c.num&c.mask
	case "ct_state":
		return ct&c.on == c.on && ct&c.off == 0
	case "ct_mark":
		return ct&ctFlags["trk"] != 0 && uint64(p.CT.Mark)&c.mask == c.num&c.mask
	case "reg0":
		return uint64(p.Reg0)&c.mask == c.num&c.mask
	}
	if (c.fam == 4) != p.Src.Is4() {
		return false
	}
	return c.proto == 0 || int(p.Proto) == c.proto
}

func (f *flow) matches(p *Packet, ct uint8) bool {
	for i := range f.conds {
		if !f.conds[i].matches(p, ct) {
			return false
		}
	}
	return true
}

// lookup finds the flow that decides p in a table, as OVS does.
func (s *Switch) lookup(table int, p *Packet, trk bool) (*flow, error) {
	fs := s.tables[table]
	ct := p.ctBits(trk)
	for i := 0; i < len(fs); {
		prio := fs[i].priority
		var plain []*flow
		var satisfied map[uint32]map[uint32]bool
		var need map[uint32]uint32
		for ; i < len(fs) && fs[i].priority == prio; i++ {
			f := fs[i]
			if f.hasConjID || !f.matches(p, ct) {
				continue
			}
			if len(f.clauses) == 0 {
				plain = append(plain, f)
				continue
			}
			if need == nil {
				satisfied, need = map[uint32]map[uint32]bool{}, map[uint32]uint32{}
			}
			for _, c := range f.clauses {
				if need[c.id] != 0 && need[c.id] != c.n {
					return nil, fmt.Errorf("table %d: conjunction %d has clauses of %d and of %d", table, c.id, need[c.id], c.n)
				}
				need[c.id] = c.n
				if satisfied[c.id] == nil {
					satisfied[c.id] = map[uint32]bool{}
				}
				satisfied[c.id][c.k] = true
			}
		}
		var done []uint32
		for id, n := range need {
			if uint32(len(satisfied[id])) == n {
				done = append(done, id)
			}
		}
		if len(plain) > 0 && len(need) > 0 {
			return nil, fmt.Errorf("table %d priority %d: plain flows and conjunction clauses both match (undefined in OVS):\n%s", table, prio, plain[0].raw)
		}
		if len(plain) > 1 && !sameActions(plain) {
			return nil, fmt.Errorf("table %d priority %d: %d different flows match:\n%s\n%s", table, prio, len(plain), plain[0].raw, plain[1].raw)
		}
		if len(plain) > 0 {
			return plain[0], nil
		}
		if len(done) == 0 {
			continue // no conjunction completed: lower priorities decide
		}
		var hits []*flow
		for _, f := range fs {
			for _, id := range done {
				if f.hasConjID && f.conjID == id && f.matches(p, ct) {
					hits = append(hits, f)
				}
			}
		}
		if len(hits) == 0 {
			return nil, fmt.Errorf("table %d: conjunction(s) %v complete but no conj_id flow", table, done)
		}
		if !sameActions(hits) {
			return nil, fmt.Errorf("table %d priority %d: conjunctions with different actions complete together:\n%s\n%s", table, prio, hits[0].raw, hits[1].raw)
		}
		return hits[0], nil
	}
	return nil, nil
}

func sameActions(fs []*flow) bool {
	for _, f := range fs[1:] {
		if strings.Join(f.actions, ",") != strings.Join(fs[0].actions, ",") {
			return false
		}
	}
	return true
}

// Run sends p into table start and follows it until it is dropped, leaves
// by an output action, or reaches table stop.
func (s *Switch) Run(p Packet, start, stop int) (Result, error) {
	res := Result{CommitMark: p.CT.Mark}
	table, trk := start, false
	defer func() { res.Reg0 = p.Reg0 }()
	for steps := 0; steps < 64; steps++ {
		if table == stop {
			res.Forwarded = true
			res.Reg0 = p.Reg0
			return res, nil
		}
		f, err := s.lookup(table, &p, trk)
		if err != nil {
			return res, err
		}
		if f == nil {
			res.Trace = append(res.Trace, fmt.Sprintf("table %d: miss, dropped", table))
			return res, nil
		}
		res.Trace = append(res.Trace, f.raw)
		res.Cookies = append(res.Cookies, f.cookie)
		next := -1
		for _, a := range f.actions {
			switch {
			case a == "drop":
				return res, nil
			case strings.HasPrefix(a, "output:"):
				res.Forwarded = true
				res.Port, _ = strconv.Atoi(strings.TrimPrefix(a, "output:"))
				return res, nil
			case strings.HasPrefix(a, "ct(commit"):
				res.Committed = true
				if _, ex, ok := strings.Cut(a, "exec("); ok {
					for _, set := range ovs.SplitTop(strings.TrimSuffix(strings.TrimSuffix(ex, ")"), ")")) {
						v, m, err := setField(set)
						if err != nil {
							return res, fmt.Errorf("%q: %w", a, err)
						}
						res.CommitMark = res.CommitMark&^m | v&m
					}
				}
			case strings.HasPrefix(a, "set_field:"), strings.HasPrefix(a, "load:"):
				v, m, err := setField(a)
				if err != nil {
					return res, fmt.Errorf("%q: %w", a, err)
				}
				p.Reg0 = p.Reg0&^m | v&m
			case strings.HasPrefix(a, "ct(table="):
				n, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(a, "ct(table="), ",", 2)[0])
				if err != nil {
					return res, fmt.Errorf("%q: %w", a, err)
				}
				trk, next = true, n
			case strings.HasPrefix(a, "goto_table:"):
				n, err := strconv.Atoi(strings.TrimPrefix(a, "goto_table:"))
				if err != nil {
					return res, fmt.Errorf("%q: %w", a, err)
				}
				next = n
			}
		}
		if next <= table {
			if next < 0 {
				return res, nil // no further action: dropped
			}
			return res, fmt.Errorf("table %d goes back to table %d", table, next)
		}
		table = next
	}
	return res, fmt.Errorf("more than 64 steps")
}

// setField reads "set_field:VALUE[/MASK]->FIELD" or
// "load:VALUE->FIELD[BIT]" / "load:VALUE->FIELD[FIRST..LAST]" (a 32-bit
// field) as a value and mask.
func setField(a string) (value, mask uint32, err error) {
	if spec, ok := strings.CutPrefix(a, "load:"); ok {
		num, dst, ok := strings.Cut(spec, "->")
		_, bits, ok2 := strings.Cut(strings.TrimSuffix(dst, "]"), "[")
		if !ok || !ok2 {
			return 0, 0, fmt.Errorf("load %q: want load:VALUE->FIELD[BITS]", a)
		}
		lo, hi, isRange := strings.Cut(bits, "..")
		first, err1 := strconv.Atoi(lo)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		v, err3 := strconv.ParseUint(num, 0, 32)
		if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || last > 31 {
			return 0, 0, fmt.Errorf("load %q: bad value or bits", a)
		}
		width := last - first + 1
		m := uint32(1<<width-1) << first
		return uint32(v) << first & m, m, nil
	}
	spec, _, ok := strings.Cut(strings.TrimPrefix(a, "set_field:"), "->")
	if !ok {
		return 0, 0, fmt.Errorf("set_field without a field")
	}
	num, m, masked := strings.Cut(spec, "/")
	v, err := strconv.ParseUint(num, 0, 32)
	mask = 0xffffffff
	if err == nil && masked {
		var mm uint64
		mm, err = strconv.ParseUint(m, 0, 32)
		mask = uint32(mm)
	}
	return uint32(v), mask, err
}
