//go:build linux

package neighbors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is the kernel neighbour table of the link named Name (the gateway).
type Link struct{ Name string }

func (l Link) index() (int, error) {
	link, err := netlink.LinkByName(l.Name)
	if err != nil {
		return 0, fmt.Errorf("link %s: %w", l.Name, err)
	}
	return link.Attrs().Index, nil
}

// Permanent implements Table.
func (l Link) Permanent(context.Context) ([]Entry, error) {
	idx, err := l.index()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := netlink.NeighList(idx, fam)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			if n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			out = append(out, Entry{IP: ip.Unmap(), MAC: strings.ToLower(n.HardwareAddr.String())})
		}
	}
	return out, nil
}

// Set implements Table.
func (l Link) Set(_ context.Context, e Entry) error {
	idx, err := l.index()
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return err
	}
	return netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: family(e.IP), State: netlink.NUD_PERMANENT,
		IP: e.IP.AsSlice(), HardwareAddr: mac})
}

// Delete implements Table.
func (l Link) Delete(_ context.Context, e Entry) error {
	idx, err := l.index()
	if err != nil {
		return err
	}
	err = netlink.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: family(e.IP), IP: e.IP.AsSlice()})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
