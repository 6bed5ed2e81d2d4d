package nsxsim

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// realizeProto marks the kernel routes the realizer owns, so it never
// touches the namespace's own (connected or hand-added) routes.
const realizeProto = netlink.RouteProtocol(201)

// RealizeInNetns makes the simulated Tier-1s real: every static route
// becomes a kernel route in the named network namespace (which stands for
// the Tier-1 router), added, changed and removed in the order the API changes
// them. Routes the kernel refuses (e.g. an unreachable next hop) show as
// realization ERROR. stop removes the hook and the routes it added.
func (s *Simulator) RealizeInNetns(name string, logf func(format string, args ...any)) (stop func(), err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink in namespace %q: %w", name, err)
	}
	// A second handle for forwarding-table reads: a handle's socket is not
	// shared between goroutines.
	reader, err := netlink.NewHandleAt(h)
	h.Close()
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("netlink in namespace %q: %w", name, err)
	}
	r := &realizer{sim: s, nl: nl, reader: reader, logf: logf, installed: map[string]string{}, owner: map[string]string{}}
	r.cond = sync.NewCond(&r.mu)

	// Hook first, then snapshot: a change racing the snapshot is applied
	// again by the worker, which is harmless (replace is idempotent).
	s.store.mu.Lock()
	s.store.onChange = r.enqueue
	var initial []change
	for t1, t := range s.store.routers {
		for _, route := range t.routes {
			initial = append(initial, change{t1, *route, false})
		}
	}
	s.store.mu.Unlock()
	r.mu.Lock()
	r.queue = append(initial, r.queue...)
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.run(); close(done) }()
	s.mu.Lock()
	s.kernel = r
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.kernel = nil
		s.mu.Unlock()
		s.store.mu.Lock()
		s.store.onChange = nil
		s.store.mu.Unlock()
		r.mu.Lock()
		r.closed = true
		r.cond.Signal()
		r.mu.Unlock()
		<-done
		r.removeAll()
		nl.Close()
		r.readMu.Lock()
		reader.Close()
		r.readMu.Unlock()
	}, nil
}

type change struct {
	tier1   string
	route   StaticRoute
	deleted bool
}

type realizer struct {
	sim       *Simulator
	nl        *netlink.Handle
	logf      func(string, ...any)
	mu        sync.Mutex
	cond      *sync.Cond
	queue     []change
	closed    bool
	installed map[string]string // "<t1>/<id>" -> network, worker-owned
	owner     map[string]string // canonical network -> tier-1 it was installed for; under mu

	readMu sync.Mutex
	reader *netlink.Handle // for forwardingEntries, under readMu
}

// enqueue runs under the registry lock: it only queues.
func (r *realizer) enqueue(t1 string, route StaticRoute, deleted bool) {
	r.mu.Lock()
	r.queue = append(r.queue, change{t1, route, deleted})
	r.cond.Signal()
	r.mu.Unlock()
}

func (r *realizer) run() {
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closed {
			r.cond.Wait()
		}
		if r.closed {
			r.mu.Unlock()
			return
		}
		c := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		r.apply(c)
	}
}

func (r *realizer) apply(c change) {
	key := c.tier1 + "/" + c.route.ID
	if old, ok := r.installed[key]; ok && (c.deleted || old != c.route.Network) {
		r.del(old)
		delete(r.installed, key)
		r.setOwner(old, "")
	}
	if c.deleted {
		r.sim.realizeErrors.Delete(key)
		return
	}
	if err := r.replace(c.route); err != nil {
		r.sim.realizeErrors.Store(key, err.Error())
		r.logf("realize %s: %v", key, err)
		return
	}
	r.sim.realizeErrors.Delete(key)
	r.installed[key] = c.route.Network
	r.setOwner(c.route.Network, c.tier1)
	r.logf("realized %s: %s via %s", key, c.route.Network, hopIPs(c.route.NextHops))
}

func (r *realizer) replace(route StaticRoute) error {
	_, dst, err := net.ParseCIDR(route.Network)
	if err != nil {
		return fmt.Errorf("network %q: %w", route.Network, err)
	}
	kr := &netlink.Route{Dst: dst, Protocol: realizeProto}
	var hops []*netlink.NexthopInfo
	for _, h := range route.NextHops {
		ip := net.ParseIP(h.IPAddress)
		if ip == nil {
			return fmt.Errorf("next hop %q is not an IP address", h.IPAddress)
		}
		hops = append(hops, &netlink.NexthopInfo{Gw: ip})
	}
	switch len(hops) {
	case 0:
		kr.Type = unix.RTN_BLACKHOLE
	case 1:
		kr.Gw = hops[0].Gw
	default:
		kr.MultiPath = hops
	}
	if err := r.nl.RouteReplace(kr); err != nil {
		return fmt.Errorf("kernel refused route %s via %s: %w", route.Network, hopIPs(route.NextHops), err)
	}
	return nil
}

func (r *realizer) del(network string) {
	_, dst, err := net.ParseCIDR(network)
	if err != nil {
		return
	}
	_ = r.nl.RouteDel(&netlink.Route{Dst: dst, Protocol: realizeProto})
}

func (r *realizer) removeAll() {
	for key, network := range r.installed {
		r.del(network)
		delete(r.installed, key)
		r.setOwner(network, "")
	}
}

// setOwner records which Tier-1 a kernel route stands for ("" forgets it).
func (r *realizer) setOwner(network, tier1 string) {
	n := canonicalPrefix(network)
	r.mu.Lock()
	if tier1 == "" {
		delete(r.owner, n)
	} else {
		r.owner[n] = tier1
	}
	r.mu.Unlock()
}

// forwardingEntries reads the namespace's main routing table: the
// realizer's routes installed for tier1 are its static routes (one entry per
// next hop, as the kernel holds them), the kernel's own routes are connected
// networks, anything else added by hand is NSX_INTERNAL.
func (r *realizer) forwardingEntries(tier1 string) ([]routingEntry, error) {
	r.readMu.Lock()
	routes, err := r.reader.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	r.readMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("listing kernel routes: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []routingEntry
	for _, kr := range routes {
		if kr.Dst == nil {
			continue // the default route: not one of the Tier-1's networks
		}
		ones, _ := kr.Dst.Mask.Size()
		addr, ok := netip.AddrFromSlice(kr.Dst.IP)
		if !ok || addr.Unmap().IsLinkLocalUnicast() {
			continue
		}
		network := netip.PrefixFrom(addr.Unmap(), ones).Masked().String()
		switch {
		case kr.Protocol == realizeProto:
			if r.owner[network] != tier1 {
				continue // realized for another Tier-1 sharing the namespace
			}
			for _, gw := range gateways(kr) {
				e := routingEntry{AdminDistance: defaultAdmin, Network: network, NextHop: gw, RouteType: routeTypeStatic}
				e.BlackHole = kr.Type == unix.RTN_BLACKHOLE
				out = append(out, e)
			}
		case kr.Protocol == unix.RTPROT_KERNEL:
			out = append(out, routingEntry{Network: network, NextHop: unspecified(addr), RouteType: routeTypeConnected})
		default:
			for _, gw := range gateways(kr) {
				out = append(out, routingEntry{Network: network, NextHop: gw, RouteType: routeTypeInternal})
			}
		}
	}
	return out, nil
}

// gateways are a kernel route's next hops ("" for a blackhole).
func gateways(kr netlink.Route) []string {
	if len(kr.MultiPath) > 0 {
		out := make([]string, 0, len(kr.MultiPath))
		for _, h := range kr.MultiPath {
			out = append(out, h.Gw.String())
		}
		return out
	}
	if kr.Gw == nil {
		return []string{""}
	}
	return []string{kr.Gw.String()}
}

func unspecified(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "0.0.0.0"
	}
	return "::"
}

func hopIPs(hops []NextHop) string {
	ips := make([]string, len(hops))
	for i, h := range hops {
		ips[i] = h.IPAddress
	}
	return strings.Join(ips, ",")
}
