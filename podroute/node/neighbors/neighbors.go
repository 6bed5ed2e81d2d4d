// Package neighbors keeps the node's neighbour entries for its own pods on
// the gateway permanent.
//
// Why: with the userspace datapath the gateway is a tap device of
// ovs-vswitchd. When the switch stops (a crash, or every agent pod
// replacement: an upgrade) the device loses its carrier and the kernel
// flushes its dynamic neighbour entries. Traffic that reaches the node from
// outside for a local pod meanwhile makes the kernel resolve the pod again;
// its first ARP request or neighbour solicitation goes into a switch that
// is not forwarding yet, and the next one follows a second later
// (retrans_time), so established connections stall for a second or more
// although the switch is back within a few hundred milliseconds. Permanent
// entries survive the carrier loss and are never probed. Calico's Felix
// keeps static ARP entries for its workloads for much the same reason.
//
// The switch sets the pod's MAC on every packet it delivers to a pod, so
// an entry briefly stale (a pod address reused before the next sync) still
// delivers; Sync corrects it at once.
package neighbors

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Entry is one neighbour: an address and its link-layer address.
type Entry struct {
	IP  netip.Addr
	MAC string // lower case, colon-separated
}

func (e Entry) String() string { return e.IP.String() + " lladdr " + e.MAC }

// Table is the kernel's neighbour table of the gateway link.
type Table interface {
	// Permanent lists the link's permanent entries, both families.
	Permanent(ctx context.Context) ([]Entry, error)
	// Set makes e the permanent entry of e.IP. Idempotent.
	Set(ctx context.Context, e Entry) error
	// Delete removes the entry of e.IP. No error if absent.
	Delete(ctx context.Context, e Entry) error
}

// Desired is one entry per address of each local pod that lies in the
// node's podCIDRs. Pure.
func Desired(pods []pipeline.PodPort, podCIDRs []netip.Prefix) []Entry {
	var out []Entry
	for _, p := range pods {
		for _, ip := range p.IPs {
			if inAny(ip, podCIDRs) {
				out = append(out, Entry{IP: ip, MAC: strings.ToLower(p.MAC)})
			}
		}
	}
	return out
}

// Diff returns the entries to set (missing, or with another MAC) and those
// to delete: permanent entries inside the node's podCIDRs that no pod has.
// Entries outside the podCIDRs are not this package's and are never
// touched. Pure; the output is sorted by address.
func Diff(desired, actual []Entry, podCIDRs []netip.Prefix) (set, del []Entry) {
	have := make(map[netip.Addr]string, len(actual))
	for _, e := range actual {
		have[e.IP] = strings.ToLower(e.MAC)
	}
	want := make(map[netip.Addr]string, len(desired))
	for _, e := range desired {
		want[e.IP] = e.MAC
		if mac, ok := have[e.IP]; !ok || mac != e.MAC {
			set = append(set, e)
		}
	}
	for _, e := range actual {
		if _, ok := want[e.IP]; !ok && inAny(e.IP, podCIDRs) {
			del = append(del, e)
		}
	}
	byIP := func(a, b Entry) int { return a.IP.Compare(b.IP) }
	slices.SortFunc(set, byIP)
	slices.SortFunc(del, byIP)
	return set, del
}

// Sync makes the table's permanent entries inside podCIDRs those of pods.
// It applies every change it can and returns how many it applied, and
// the errors of those it could not.
func Sync(ctx context.Context, t Table, pods []pipeline.PodPort, podCIDRs []netip.Prefix) (set, deleted int, err error) {
	actual, err := t.Permanent(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list the gateway's neighbours: %w", err)
	}
	toSet, toDel := Diff(Desired(pods, podCIDRs), actual, podCIDRs)
	var errs []error
	for _, e := range toSet {
		if err := t.Set(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("set neighbour %s: %w", e, err))
			continue
		}
		set++
	}
	for _, e := range toDel {
		if err := t.Delete(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("delete neighbour %s: %w", e, err))
			continue
		}
		deleted++
	}
	return set, deleted, errors.Join(errs...)
}

func inAny(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
