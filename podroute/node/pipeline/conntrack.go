package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// Conntrack is the datapath's connection tracker, as the agent cleans it.
type Conntrack interface {
	// Dump returns the entries of a zone.
	Dump(ctx context.Context, zone uint16) ([]ovs.Conn, error)
	// Flush removes the entries of zone whose original tuple is orig. No
	// error if there is none.
	Flush(ctx context.Context, zone uint16, proto string, orig ovs.Tuple) error
}

// UDPChanged says whether two service tables translate UDP differently
// (old nil: the first table since the agent started, which always needs a
// look: endpoints may have gone while it was down).
func UDPChanged(old, cur *ServiceTable) bool {
	if old == nil {
		return true
	}
	udp := func(t *ServiceTable) []ServicePort {
		var out []ServicePort
		if t != nil {
			for _, p := range t.Ports {
				if p.Protocol == UDP {
					out = append(out, p)
				}
			}
		}
		return out
	}
	a, b := udp(old), udp(cur)
	return !slices.EqualFunc(a, b, func(x, y ServicePort) bool {
		return x.VIP == y.VIP && x.Port == y.Port && slices.Equal(x.Endpoints, y.Endpoints)
	})
}

// StaleUDP picks, from the pod zone's entries, the UDP flows that with
// table t installed would stay stuck where they are, and that kube-proxy
// would flush in its place: those translated to an endpoint t no longer
// has for their Service address and port (the client would keep sending
// to a dead endpoint until the entry times out, as long as it keeps
// sending), and those not translated to an address and port t now
// translates (they went to kube-proxy while the table had no entry for
// it). UDP has no end of connection: without this, a client that keeps
// sending never moves. Pure.
func StaleUDP(conns []ovs.Conn, t *ServiceTable) []ovs.Conn {
	var stale []ovs.Conn
	for _, c := range conns {
		if c.Proto != "udp" || c.Zone != conntrackZone {
			continue
		}
		eps := t.Endpoints(c.Orig.Dst, UDP, c.Orig.DstPort)
		translated := c.Reply.Src != c.Orig.Dst || c.Reply.SrcPort != c.Orig.DstPort
		switch {
		case translated && c.Mark&markService != 0:
			if !slices.Contains(eps, Endpoint{Addr: c.Reply.Src, Port: c.Reply.SrcPort}) {
				stale = append(stale, c)
			}
		case !translated && len(eps) > 0:
			stale = append(stale, c)
		}
	}
	return stale
}

// FlushStaleUDP removes the entries StaleUDP picks for table t and
// returns how many it removed.
func FlushStaleUDP(ctx context.Context, ct Conntrack, t *ServiceTable) (int, error) {
	conns, err := ct.Dump(ctx, conntrackZone)
	if err != nil {
		return 0, fmt.Errorf("read conntrack zone %d: %w", conntrackZone, err)
	}
	var errs []error
	n := 0
	for _, c := range StaleUDP(conns, t) {
		if err := ct.Flush(ctx, conntrackZone, c.Proto, c.Orig); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
