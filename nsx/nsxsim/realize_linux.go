package nsxsim

import (
	"fmt"
	"net"
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
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %q: %w", name, err)
	}
	r := &realizer{sim: s, nl: nl, logf: logf, installed: map[string]string{}}
	r.cond = sync.NewCond(&r.mu)

	// Hook first, then snapshot: a change racing the snapshot is applied
	// again by the worker, which is harmless (replace is idempotent).
	s.store.mu.Lock()
	s.store.onChange = r.enqueue
	var initial []change
	for t1, t := range s.store.tier1s {
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
	return func() {
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
	}
}

func hopIPs(hops []NextHop) string {
	ips := make([]string, len(hops))
	for i, h := range hops {
		ips[i] = h.IPAddress
	}
	return strings.Join(ips, ",")
}
