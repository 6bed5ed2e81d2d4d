package podroute

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/t1route/t1route/nsx"
)

// Pod CIDRs are first come, first served. A Node object is all it takes to
// ask for a route, and anyone who can create or update Nodes (a compromised
// kubelet registering itself included) could otherwise capture another
// node's traffic: with an equal pod CIDR, a longer prefix inside it (the
// Tier-1 prefers the most specific route), or a shorter one around it. So a
// pod CIDR that overlaps one already routed to another node (equal,
// inside, or containing it) gets no route, and nothing the newcomer does
// moves the existing one.
//
// Who was first: the node that holds the route on the Tier-1 (its route
// carries the node's name) keeps it; among claims that hold nothing, the
// oldest Node (creationTimestamp, then UID, then name) wins. The Tier-1
// decides before age because a pod CIDR can be given to an old node long
// after a newer one got its route (spec.podCIDR may go from empty to a
// value at any time), and because age alone would let a claim win back a
// route whenever the holder changes.

// Reasons a pod CIDR loses to another node's (event reasons).
const (
	// ReasonDuplicatePodCID: another node holds the same pod CIDR.
	ReasonDuplicatePodCID = "DuplicatePodCIDR"
	// ReasonOverlappingPodCIDR: the pod CIDR lies inside, or contains,
	// another node's pod CIDR that holds its route.
	ReasonOverlappingPodCIDR = "OverlappingPodCIDR"
)

// namesHolder reports whether a problem of this reason names the node
// holding the route: its message, not only its reason, is news when it
// changes (events and conditions say who has the pod CIDR now).
func namesHolder(reason string) bool {
	return reason == ReasonDuplicatePodCID || reason == ReasonOverlappingPodCIDR
}

// claim is one node's claim to a route for one of its pod CIDRs.
type claim struct {
	route   nsx.Route
	prefix  netip.Prefix
	node    string
	created time.Time
	uid     string
	seq     int // the pod CIDR's position in the node's list
	// held: the node held this route before (it is on the Tier-1, or was
	// in the previous pass, under the node's name); such claims go first.
	held     bool
	accepted bool
	// blocker, for a refused claim, is the accepted claim it is refused
	// for: the one containing it or equal to it, else the lowest one
	// inside it. Named in the node's problem.
	blocker *claim
	mark    uint64 // the cache's settle generation, to collect a claim once
	// prob is the problem last built, for blocker probFor: a pass does not
	// format the messages of refusals that did not change.
	prob    NodeProblem
	probFor *claim
}

// claimBefore orders claims: the one that wins an overlap first.
func claimBefore(a, b *claim) bool {
	if a.held != b.held {
		return a.held
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.uid != b.uid {
		return a.uid < b.uid
	}
	if a.node != b.node {
		return a.node < b.node
	}
	return a.seq < b.seq
}

// problem is a refused claim's problem, naming the node holding the route.
func (c *claim) problem() NodeProblem {
	if c.probFor != c.blocker {
		c.prob, c.probFor = c.buildProblem(), c.blocker
	}
	return c.prob
}

func (c *claim) buildProblem() NodeProblem {
	b := c.blocker
	p := NodeProblem{Node: c.node, CIDR: c.route.Network, Reason: ReasonOverlappingPodCIDR}
	holder := fmt.Sprintf("node %s's pod CIDR, which has the route", b.node)
	if b.node == c.node {
		holder = "another of this node's pod CIDRs, which has the route"
	}
	const rule = "no route is created for it: a pod CIDR stays with the node that claimed it first; give this node a pod CIDR no other node has"
	switch {
	case b.prefix == c.prefix:
		p.Reason = ReasonDuplicatePodCID
		p.Message = fmt.Sprintf("pod CIDR %s is also %s; %s", c.prefix, holder, rule)
	case b.prefix.Bits() < c.prefix.Bits():
		p.Message = fmt.Sprintf("pod CIDR %s lies inside %s, %s; %s", c.prefix, b.prefix, holder, rule)
	default:
		p.Message = fmt.Sprintf("pod CIDR %s contains %s, %s; %s", c.prefix, b.prefix, holder, rule)
	}
	return p
}

// Holders says which node holds each of this cluster's routes on the
// Tier-1: route ID -> node name, from the routes' tags.
func Holders(id Identity, routes map[string]nsx.Route) map[string]string {
	out := make(map[string]string, len(routes))
	for rid, r := range routes {
		if id.Owns(r) {
			if n := NodeOf(r); n != "" {
				out[rid] = n
			}
		}
	}
	return out
}

// sortClaims orders claims by claimBefore.
func sortClaims(claims []*claim) {
	slices.SortFunc(claims, func(a, b *claim) int {
		switch {
		case claimBefore(a, b):
			return -1
		case claimBefore(b, a):
			return 1
		}
		return 0
	})
}

// settleAll decides every claim from scratch into the empty trie t: in
// claimBefore order, a claim is accepted unless it overlaps one accepted
// before it; then each refused claim is given its blocker.
func settleAll(t *claimTrie, claims []*claim) {
	sortClaims(claims)
	for _, c := range claims {
		c.accepted, c.blocker = false, nil
		t.add(c)
		if t.blocker(c.prefix) == nil {
			t.accept(c)
		}
	}
	for _, c := range claims {
		if !c.accepted {
			c.blocker = t.blocker(c.prefix)
		}
	}
}

// claimTrie holds claims in a binary trie per IP family, keyed by prefix
// bits: finding the accepted claim a prefix overlaps, and the claims that
// overlap a prefix, walk one path (32 or 128 steps at most), whatever the
// number of nodes. Accepted claims never overlap each other.
type claimTrie struct {
	roots [2]*trieNode // IPv4, IPv6
}

type trieNode struct {
	child  [2]*trieNode
	claims []*claim // the claims of exactly this prefix
	holder *claim   // the accepted one among them, if any
	// nClaims and nHeld count claims and accepted claims in this subtree.
	nClaims, nHeld int
}

func newClaimTrie() *claimTrie { return &claimTrie{} }

// prefixBits is p's address as bytes and its family's root index.
func prefixBits(p netip.Prefix) ([16]byte, int) {
	if p.Addr().Is4() {
		var b [16]byte
		a4 := p.Addr().As4()
		copy(b[:], a4[:])
		return b, 0
	}
	return p.Addr().As16(), 1
}

func bitAt(b *[16]byte, i int) int { return int(b[i/8]>>(7-i%8)) & 1 }

// add inserts c (not accepted).
func (t *claimTrie) add(c *claim) {
	b, fam := prefixBits(c.prefix)
	if t.roots[fam] == nil {
		t.roots[fam] = &trieNode{}
	}
	n := t.roots[fam]
	n.nClaims++
	for i := range c.prefix.Bits() {
		next := &n.child[bitAt(&b, i)]
		if *next == nil {
			*next = &trieNode{}
		}
		n = *next
		n.nClaims++
	}
	n.claims = append(n.claims, c)
}

// remove deletes c, releasing it first if it is accepted; no-op if absent.
func (t *claimTrie) remove(c *claim) {
	if c.accepted {
		t.release(c)
	}
	b, fam := prefixBits(c.prefix)
	path := make([]*trieNode, 0, c.prefix.Bits()+1)
	for n, i := t.roots[fam], 0; n != nil; i++ {
		path = append(path, n)
		if i == c.prefix.Bits() {
			break
		}
		n = n.child[bitAt(&b, i)]
	}
	if len(path) != c.prefix.Bits()+1 {
		return
	}
	last := path[len(path)-1]
	k := slices.Index(last.claims, c)
	if k < 0 {
		return
	}
	last.claims = slices.Delete(last.claims, k, k+1)
	for i, n := range path {
		n.nClaims--
		if n.nClaims == 0 { // prune the empty subtree
			if i == 0 {
				t.roots[fam] = nil
			} else {
				path[i-1].child[bitAt(&b, i-1)] = nil
			}
			return
		}
	}
}

// accept makes c, which must be in the trie and overlap no accepted
// claim, the holder of its prefix.
func (t *claimTrie) accept(c *claim) { t.holding(c, 1) }

// release undoes accept.
func (t *claimTrie) release(c *claim) { t.holding(c, -1) }

func (t *claimTrie) holding(c *claim, delta int) {
	b, fam := prefixBits(c.prefix)
	n := t.roots[fam]
	for i := 0; ; i++ {
		n.nHeld += delta
		if i == c.prefix.Bits() {
			break
		}
		n = n.child[bitAt(&b, i)]
	}
	c.accepted = delta > 0
	if c.accepted {
		n.holder = c
	} else {
		n.holder = nil
	}
}

// blocker is the accepted claim p overlaps, or nil: the one containing p
// or equal to it (at most one: accepted claims never overlap), else the
// lowest one inside p.
func (t *claimTrie) blocker(p netip.Prefix) *claim {
	b, fam := prefixBits(p)
	n := t.roots[fam]
	for i := 0; n != nil; i++ {
		if n.holder != nil {
			return n.holder
		}
		if i == p.Bits() {
			break
		}
		n = n.child[bitAt(&b, i)]
	}
	if n == nil || n.nHeld == 0 {
		return nil
	}
	for n.holder == nil { // the lowest accepted claim below
		if c := n.child[0]; c != nil && c.nHeld > 0 {
			n = c
		} else {
			n = n.child[1]
		}
	}
	return n.holder
}

// overlapping calls fn for every claim whose prefix overlaps p: those of
// prefixes containing p or equal to it, and those inside p.
func (t *claimTrie) overlapping(p netip.Prefix, fn func(*claim)) {
	b, fam := prefixBits(p)
	n := t.roots[fam]
	for i := 0; n != nil && i < p.Bits(); i++ {
		for _, c := range n.claims {
			fn(c)
		}
		n = n.child[bitAt(&b, i)]
	}
	if n == nil {
		return
	}
	stack := []*trieNode{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range n.claims {
			fn(c)
		}
		for _, ch := range n.child {
			if ch != nil {
				stack = append(stack, ch)
			}
		}
	}
}
