package pipeline

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	"github.com/t1route/t1route/podroute/node/policy/rules"
)

// PolicyTables are the OpenFlow tables of the policy stage, in pipeline order
// (each must be greater than the one before). Packets enter at Conntrack;
// allowed ones leave to Next.
type PolicyTables struct {
	Conntrack, ConntrackState                           int
	EgressAdmin, EgressNetworkPolicy, EgressBaseline    int
	IngressAdmin, IngressNetworkPolicy, IngressBaseline int
	Commit, Next                                        int
	// Services and ServicesNext, if set, are the service stage: a pod's
	// new connection is resubmitted to Services (where OVS learns session
	// affinity) and then to ServicesNext, which hands it to EgressAdmin,
	// translated or not.
	Services, ServicesNext int
	// Replies is where replies and related packets of allowed connections
	// go (0: Next).
	Replies int
	// Guard, if set, is the management-network guard's table (see Guard):
	// every packet on its way to EgressAdmin passes it first, after the
	// service stage, so the guard judges a Service connection's endpoint.
	Guard int
}

// egress is where packets to be evaluated enter: the guard, if any, then
// EgressAdmin.
func (t PolicyTables) egress() int {
	if t.Guard > 0 {
		return t.Guard
	}
	return t.EgressAdmin
}

// LocalPod is one pod attached to this node's bridge, as OVSDB knows it.
type LocalPod struct {
	Key    string // "namespace/name"
	OFPort int
	IPs    []netip.Addr
}

// PolicyNode is the node's own side of the bridge: traffic from the node's own
// addresses through the gateway port (kubelet probes, the node's daemons)
// is always allowed, as Kubernetes requires.
type PolicyNode struct {
	GatewayPort int
	Addrs       []netip.Addr
}

// PolicyOptions configures rendering.
type PolicyOptions struct {
	Tables PolicyTables
	Zone   uint16 // conntrack zone of the bridge
}

// Cookies of policy flows carry CookieTag in their top 16 bits (so they
// can be dumped apart from the rest) and a rule or isolation ID below.
const (
	CookieTag  uint64 = 0x7470 << 48
	CookieMask uint64 = 0xffff << 48
)

// Counter says what the packets counted on flows with one cookie mean.
type Counter struct {
	Policy    rules.PolicyRef
	Direction rules.Direction
	Action    rules.Action // Deny for isolation drops
	// Isolation marks the drop of a pod isolated by NetworkPolicies that
	// allowed nothing matching; Policy is the first of them by name.
	Isolation bool
	Rule      string // the rule's label, for logs
}

// FlowSet is the rendered policy stage.
type FlowSet struct {
	Flows    []string
	Counters map[uint64]Counter
	// Rules counts the rules rendered (a rule none of whose pods is
	// attached yet renders nothing).
	Rules    int
	Problems []string
}

// BaseFlows is the number of flows of the policy stage without any policy
// and without a service stage (plus two per node address).
const BaseFlows = 25

// Flow priorities inside the policy tables.
const (
	prioTopRank       = 60000 // Admin and Baseline: 60000 - rank of the rule
	prioMaxRanks      = 59000
	prioNetpolDirect  = 210 // NetworkPolicy rule with neither peers nor ports
	prioNetpolConj    = 200
	prioIsolationDrop = 100
)

// RenderPolicy turns a node's rules into OpenFlow 1.3 flows (ovs-ofctl syntax)
// for the policy tables. Pure.
//
// Every IP packet is tracked (zone opt.Zone). Replies and related packets
// of allowed connections pass (see base). Everything else, including later
// packets of an established connection in its original direction, is
// evaluated: egress
// at the source pod (Admin, NetworkPolicy, Baseline tier), then ingress at
// the destination pod, so a policy change also stops connections it now
// denies, while connections it still allows continue. New allowed
// connections are committed.
//
// A rule is a conjunctive match of up to three clauses: subject pods,
// peer addresses, ports; so its flows grow with pods + peers + ports, not
// their product.
func RenderPolicy(rs *rules.Set, pods []LocalPod, node PolicyNode, opt PolicyOptions) *FlowSet {
	r := &renderer{opt: opt, t: opt.Tables, fs: &FlowSet{Counters: map[uint64]Counter{}}, flows: map[flowKey]*flow{},
		pods: map[string]*LocalPod{}, ids: map[uint32]bool{}}
	for i := range pods {
		r.pods[pods[i].Key] = &pods[i]
	}
	r.base(node)
	if rs != nil {
		ranks := map[[2]int]int{} // (direction, tier) → next rank
		lastRule := map[[2]int]string{}
		for i := range rs.Rules {
			rule := &rs.Rules[i]
			prio := prioNetpolConj
			if rule.Tier != rules.TierNetworkPolicy {
				k := [2]int{int(rule.Direction), int(rule.Tier)}
				id := fmt.Sprintf("%s|%d", rule.Policy, rule.Index)
				if lastRule[k] != id {
					lastRule[k] = id
					ranks[k]++
				}
				if ranks[k] > prioMaxRanks {
					r.problem("%s: more than %d rules in the %s %s tier: not enforced", rule.Label(), prioMaxRanks, rule.Direction, rule.Tier)
					continue
				}
				prio = prioTopRank - ranks[k]
			}
			r.rule(rule, prio)
		}
		for d := range rs.Isolated {
			r.isolation(rules.Direction(d), rs.Isolated[d])
		}
	}
	r.fs.Flows = r.format()
	return r.fs
}

type flowKey struct {
	table, priority int
	match           string
}

type flow struct {
	actions []string
	conj    bool
	cookie  uint64
}

type renderer struct {
	opt   PolicyOptions
	t     PolicyTables
	fs    *FlowSet
	flows map[flowKey]*flow
	pods  map[string]*LocalPod
	ids   map[uint32]bool
}

func (r *renderer) problem(format string, args ...any) {
	r.fs.Problems = append(r.fs.Problems, fmt.Sprintf(format, args...))
}

// add records a flow. Conjunction clauses with the same match and priority
// merge into one flow; of two plain flows with the same match and priority
// the first stays (callers never give them different meanings).
func (r *renderer) add(table, priority int, match string, cookie uint64, actions ...string) {
	k := flowKey{table, priority, match}
	conj := len(actions[0]) > 12 && actions[0][:12] == "conjunction("
	if f, ok := r.flows[k]; ok {
		if f.conj && conj {
			f.actions = append(f.actions, actions...)
		} else if f.conj {
			r.flows[k] = &flow{actions: actions, cookie: cookie} // a plain flow decides alone
		}
		return
	}
	r.flows[k] = &flow{actions: actions, conj: conj, cookie: cookie}
}

func (r *renderer) goTo(table int) string { return fmt.Sprintf("goto_table:%d", table) }

// id returns a conjunction/cookie ID for key: a hash, so that IDs do not
// shift when other rules come and go (replace-flows then changes only the
// flows of the rules that changed), probed past collisions.
func (r *renderer) id(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	id := h.Sum32()
	for id == 0 || r.ids[id] {
		id++
	}
	r.ids[id] = true
	return id
}

// base adds the fixed flows: conntrack, the states that skip policy, the
// node's own traffic, the tables' defaults and the commit.
//
// Connections are marked in conntrack (ct_mark): allowed by the policy
// stage, translated by the service stage, entered from the gateway. The
// service stage commits a connection (with its NAT) before the policy
// stage judges it, so a connection the policy stage denies is in conntrack
// too: only connections marked allowed have their replies pass unjudged,
// and the replies of a translated connection never allowed are dropped.
// Every later packet in the original direction is judged again, so a
// policy change also stops connections it now denies; one allowed that
// was not marked yet (committed by the service stage while denied, or
// before marks existed) is marked then.
func (r *renderer) base(node PolicyNode) {
	t, z := r.t, r.opt.Zone
	tag := CookieTag
	replies := t.Replies
	if replies == 0 {
		replies = t.Next
	}
	commit := func(mark int) string {
		return fmt.Sprintf("ct(commit,zone=%d,exec(%s))", z, load(uint32(mark), uint32(mark), ctMark))
	}
	fromGW := markAllowed | markFromGateway
	for _, fam := range []string{"ip", "ipv6"} {
		r.add(t.Conntrack, 100, fam, tag, fmt.Sprintf("ct(table=%d,zone=%d,nat)", t.ConntrackState, z))
		if node.GatewayPort > 0 {
			gw := fmt.Sprintf("in_port=%d,%s", node.GatewayPort, fam)
			r.add(t.Commit, 100, "ct_state=+new+trk,"+gw, tag, commit(fromGW), r.goTo(t.Next))
			r.add(t.Commit, 80, fmt.Sprintf("ct_state=-new+est-rpl+trk,ct_mark=0/%#x,%s", markAllowed, gw), tag, commit(fromGW), r.goTo(t.Next))
		}
		r.add(t.Commit, 90, "ct_state=+new+trk,"+fam, tag, commit(markAllowed), r.goTo(t.Next))
		r.add(t.Commit, 70, fmt.Sprintf("ct_state=-new+est-rpl+trk,ct_mark=0/%#x,%s", markAllowed, fam), tag, commit(markAllowed), r.goTo(t.Next))
	}
	r.add(t.Conntrack, 0, "", tag, "drop")
	for _, st := range []string{"+est+rpl+trk", "+rel+trk"} {
		// Replies of connections that entered from the gateway: back to it.
		r.add(t.ConntrackState, 210, fmt.Sprintf("ct_state=%s,ct_mark=%#x/%#x", st, fromGW, fromGW), tag,
			load(regToGateway, regToGateway, reg0), r.goTo(replies))
		r.add(t.ConntrackState, 200, fmt.Sprintf("ct_state=%s,ct_mark=%#x/%#x", st, markAllowed, markAllowed), tag, r.goTo(replies))
	}
	// Translated by the service stage but never allowed: no reply passes.
	r.add(t.ConntrackState, 195, fmt.Sprintf("ct_state=+rpl+trk,ct_mark=%#x/%#x", markService, markService|markAllowed), tag, "drop")
	r.add(t.ConntrackState, 195, fmt.Sprintf("ct_state=+rel+trk,ct_mark=%#x/%#x", markService, markService|markAllowed), tag, "drop")
	if node.GatewayPort > 0 {
		for _, a := range node.Addrs {
			m := fmt.Sprintf("in_port=%d,%s", node.GatewayPort, srcMatch(hostPrefix(a)))
			r.add(t.ConntrackState, 190, "ct_state=+new+trk,"+m, tag, commit(fromGW), r.goTo(t.Next))
			r.add(t.ConntrackState, 180, m, tag, r.goTo(t.Next))
		}
	}
	if t.Services > 0 {
		// Only pods' connections are translated here: what enters from the
		// gateway was translated by the kernel already, if at all.
		if node.GatewayPort > 0 {
			r.add(t.ConntrackState, 110, fmt.Sprintf("ct_state=+new+trk,in_port=%d", node.GatewayPort), tag, r.goTo(t.egress()))
		}
		r.add(t.ConntrackState, 100, "ct_state=+new+trk", tag, fmt.Sprintf("resubmit(,%d)", t.Services), fmt.Sprintf("resubmit(,%d)", t.ServicesNext))
	}
	r.add(t.ConntrackState, 0, "", tag, r.goTo(t.egress()))
	r.add(t.EgressAdmin, 0, "", tag, r.goTo(t.EgressNetworkPolicy))
	r.add(t.EgressNetworkPolicy, 0, "", tag, r.goTo(t.EgressBaseline))
	r.add(t.EgressBaseline, 0, "", tag, r.goTo(t.IngressAdmin))
	r.add(t.IngressAdmin, 0, "", tag, r.goTo(t.IngressNetworkPolicy))
	r.add(t.IngressNetworkPolicy, 0, "", tag, r.goTo(t.IngressBaseline))
	r.add(t.IngressBaseline, 0, "", tag, r.goTo(t.Commit))
	r.add(t.Commit, 0, "", tag, r.goTo(t.Next))
}

func (r *renderer) table(d rules.Direction, tier rules.Tier) int {
	t := r.t
	if d == rules.Egress {
		return [...]int{t.EgressAdmin, t.EgressNetworkPolicy, t.EgressBaseline}[tier]
	}
	return [...]int{t.IngressAdmin, t.IngressNetworkPolicy, t.IngressBaseline}[tier]
}

// action is what a matching rule does, as an OpenFlow action.
func (r *renderer) action(d rules.Direction, tier rules.Tier, a rules.Action) string {
	next := r.t.IngressAdmin // the egress decision is made: on to ingress
	if d == rules.Ingress {
		next = r.t.Commit
	}
	switch {
	case a == rules.Deny:
		return "drop"
	case a == rules.Pass && tier == rules.TierAdmin:
		return r.goTo(r.table(d, rules.TierNetworkPolicy))
	}
	return r.goTo(next) // Accept, a NetworkPolicy allow, a Baseline Pass
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ip"
	}
	return "ipv6"
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func srcMatch(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ip,nw_src=" + prefixString(p)
	}
	return "ipv6,ipv6_src=" + prefixString(p)
}

func dstMatch(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ip,nw_dst=" + prefixString(p)
	}
	return "ipv6,ipv6_dst=" + prefixString(p)
}

// rule renders one rule at one priority.
func (r *renderer) rule(rule *rules.Rule, prio int) {
	table := r.table(rule.Direction, rule.Tier)
	// Clause 1: the subject pods, by port (egress) or address (ingress).
	var subjects []string
	fams := map[string]bool{}
	for _, key := range rule.Pods {
		lp := r.pods[key]
		if lp == nil || lp.OFPort <= 0 {
			continue // not attached here (yet): nothing to match
		}
		for _, ip := range lp.IPs {
			fams[family(ip)] = true
			if rule.Direction == rules.Ingress {
				subjects = append(subjects, dstMatch(hostPrefix(ip)))
			}
		}
		if rule.Direction == rules.Egress && len(lp.IPs) > 0 {
			subjects = append(subjects, fmt.Sprintf("in_port=%d", lp.OFPort))
		}
	}
	if len(subjects) == 0 {
		return
	}
	clauses := [][]string{subjects}
	// Clause 2: the peers, of the families the subjects have.
	if !rule.AnyPeer {
		var peers []string
		for _, p := range rule.Peers {
			if !fams[family(p.Addr())] {
				continue
			}
			if rule.Direction == rules.Ingress {
				peers = append(peers, srcMatch(p))
			} else {
				peers = append(peers, dstMatch(p))
			}
		}
		if len(peers) == 0 {
			return
		}
		clauses = append(clauses, peers)
	}
	// Clause 3: the ports.
	if !rule.AnyPort {
		var ports []string
		for _, pr := range rule.Ports {
			for _, fam := range []string{"ip", "ipv6"} {
				if fams[fam] {
					ports = append(ports, portMatches(pr, fam == "ipv6")...)
				}
			}
		}
		if len(ports) == 0 {
			return
		}
		clauses = append(clauses, ports)
	}
	r.fs.Rules++
	id := r.id(fmt.Sprintf("%s|%s|%d|%d", rule.Policy, rule.Direction, rule.Index, rule.Part))
	cookie := CookieTag | uint64(id)
	r.fs.Counters[cookie] = Counter{Policy: rule.Policy, Direction: rule.Direction, Action: rule.Action, Rule: rule.Label()}
	act := r.action(rule.Direction, rule.Tier, rule.Action)
	if len(clauses) == 1 {
		if rule.Tier == rules.TierNetworkPolicy {
			prio = prioNetpolDirect
		}
		for _, m := range subjects {
			r.add(table, prio, m, cookie, act)
		}
		return
	}
	n := len(clauses)
	for k, c := range clauses {
		for _, m := range c {
			r.add(table, prio, m, CookieTag, fmt.Sprintf("conjunction(%d,%d/%d)", id, k+1, n))
		}
	}
	r.add(table, prio, fmt.Sprintf("conj_id=%d", id), cookie, act)
}

// portMatches matches a port range of one protocol and family.
func portMatches(pr rules.PortRange, v6 bool) []string {
	name := map[rules.Protocol]string{rules.TCP: "tcp", rules.UDP: "udp", rules.SCTP: "sctp"}[pr.Protocol]
	if name == "" {
		return nil
	}
	if v6 {
		name += "6"
	}
	if pr.AllPorts() {
		return []string{name}
	}
	var out []string
	for _, vm := range masks(pr.Start, pr.End) {
		if vm.Mask == 0xffff {
			out = append(out, fmt.Sprintf("%s,tp_dst=%d", name, vm.Value))
		} else {
			out = append(out, fmt.Sprintf("%s,tp_dst=0x%x/0x%x", name, vm.Value, vm.Mask))
		}
	}
	return out
}

// isolation drops, in the NetworkPolicy tier, what no rule allowed for
// pods that NetworkPolicies isolate.
func (r *renderer) isolation(d rules.Direction, isolated map[string][]rules.PolicyRef) {
	keys := make([]string, 0, len(isolated))
	for k := range isolated {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	table := r.table(d, rules.TierNetworkPolicy)
	for _, key := range keys {
		lp := r.pods[key]
		if lp == nil || lp.OFPort <= 0 || len(isolated[key]) == 0 {
			continue
		}
		id := r.id(fmt.Sprintf("isolation|%s|%s", d, key))
		cookie := CookieTag | uint64(id)
		ref := isolated[key][0]
		r.fs.Counters[cookie] = Counter{Policy: ref, Direction: d, Action: rules.Deny, Isolation: true,
			Rule: fmt.Sprintf("%s %s isolation of %s", ref, d, key)}
		if d == rules.Egress {
			r.add(table, prioIsolationDrop, fmt.Sprintf("in_port=%d", lp.OFPort), cookie, "drop")
			continue
		}
		for _, ip := range lp.IPs {
			r.add(table, prioIsolationDrop, dstMatch(hostPrefix(ip)), cookie, "drop")
		}
	}
}

// format writes the flows in ovs-ofctl syntax, sorted.
func (r *renderer) format() []string {
	out := make([]string, 0, len(r.flows))
	var b []byte
	for k, f := range r.flows {
		actions := f.actions
		if f.conj {
			actions = slices.Clone(actions)
			slices.Sort(actions)
		}
		b = append(b[:0], "table="...)
		b = strconv.AppendInt(b, int64(k.table), 10)
		b = append(b, ",priority="...)
		b = strconv.AppendInt(b, int64(k.priority), 10)
		b = append(b, ",cookie=0x"...)
		b = strconv.AppendUint(b, f.cookie, 16)
		if k.match != "" {
			b = append(b, ',')
			b = append(b, k.match...)
		}
		b = append(b, " actions="...)
		for i, a := range actions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, a...)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// hostPrefix is the single-address prefix of ip.
func hostPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen())
}
