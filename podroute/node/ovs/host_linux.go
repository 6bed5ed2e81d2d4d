//go:build linux

package ovs

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ConfigureHost brings the gateway link up with its addresses and turns on
// IPv4 forwarding. Idempotent. It never adds NAT: pod traffic leaves the node
// with the pod's own address.
func ConfigureHost(gatewayLink string, addrs []netip.Prefix) error {
	link, err := netlink.LinkByName(gatewayLink)
	if err != nil {
		return fmt.Errorf("gateway link %s: %w", gatewayLink, err)
	}
	v6 := false
	for _, a := range addrs {
		ipn := &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}
		addr := &netlink.Addr{IPNet: ipn}
		if a.Addr().Is6() {
			v6 = true
			// No duplicate address detection: the address is the switch's
			// to answer for, and DAD would hold it tentative for a second.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, gatewayLink, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", gatewayLink, err)
	}
	if err := enableSysctl("/proc/sys/net/ipv4/ip_forward", "IPv4 forwarding"); err != nil {
		return err
	}
	if v6 {
		return enableSysctl("/proc/sys/net/ipv6/conf/all/forwarding", "IPv6 forwarding")
	}
	return nil
}

// enableSysctl sets a sysctl to 1 unless it is already.
func enableSysctl(path, what string) error {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable %s: %w", what, err)
	}
	return nil
}

// DisableTxChecksum turns off TX checksum offload on a link. The userspace
// (netdev) datapath reads veths with AF_PACKET and never completes a
// checksum a sender left to the hardware, so TCP through it fails silently
// unless the sending side computes checksums itself.
func DisableTxChecksum(link string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer e.Close()
	features, err := e.Features(link)
	if err != nil {
		return fmt.Errorf("read offloads of %s: %w", link, err)
	}
	change := map[string]bool{}
	for name, on := range features {
		if on && strings.HasPrefix(name, "tx-checksum") {
			change[name] = false
		}
	}
	if len(change) == 0 {
		return nil
	}
	if err := e.Change(link, change); err != nil {
		return fmt.Errorf("turn off TX checksum offload on %s: %w", link, err)
	}
	return nil
}

// IsolateHostPort keeps the node's own IP stack off a pod's host-side veth:
// it never answers ARP there, and has no IPv6 on it. With the userspace
// (netdev) datapath the veth stays an ordinary kernel interface beside its
// OVS port; left alone, the node answers the pod's ARP for the gateway with
// the veth's MAC, and the pod's frames then reach the node's routing
// directly, around OVS and its spoof guard. Harmless with the kernel
// datapath, whose ports the stack never sees.
func IsolateHostPort(link string) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+link+"/arp_ignore", []byte("8"), 0o644); err != nil {
		return fmt.Errorf("stop ARP answers on %s: %w", link, err)
	}
	v6 := "/proc/sys/net/ipv6/conf/" + link + "/disable_ipv6"
	if _, err := os.Stat(v6); err == nil {
		if err := os.WriteFile(v6, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("disable IPv6 on %s: %w", link, err)
		}
	}
	return nil
}
