package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/t1route/t1route/podroute/node/ovs/ovstest"
)

// These tests send real packets through the rendered pipeline on a real
// ovs-vswitchd: OVS's in-memory dummy datapath (userspace conntrack and NAT
// included, no device, no namespace), packets injected with
// netdev-dummy/receive and read back from each port's capture. The netns
// e2e test (integration/e2e TestServices) runs the same paths with real
// sockets.

// dp is a switch with the pipeline installed: port 1 the gateway, ports
// 2.. the pods.
type dp struct {
	t    *testing.T
	sw   ovstest.Switch
	gw   Gateway
	pods []PodPort
	seen map[int]int // packets already read from each port's capture
}

const dpPorts = 4

func newDP(t *testing.T) *dp {
	sw := ovstest.Start(t, dpPorts)
	d := &dp{t: t, sw: sw, seen: map[int]int{},
		gw: Gateway{OFPort: 1, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.1.1"), netip.MustParseAddr("2001:db8:96:1::1")}}}
	for i := 2; i <= dpPorts; i++ {
		d.pods = append(d.pods, PodPort{Name: fmt.Sprintf("p%d", i), Key: fmt.Sprintf("x/p%d", i), OFPort: i, MAC: fmt.Sprintf("0a:00:00:00:00:%02x", i),
			IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("100.96.1.%d", i)), netip.MustParseAddr(fmt.Sprintf("2001:db8:96:1::%d", i))}})
	}
	for i := 1; i <= dpPorts; i++ {
		d.cmd("ovs-vsctl", "--db=unix:"+sw.Dir+"/db.sock", "set", "interface", fmt.Sprintf("p%d", i), "options:tx_pcap="+d.pcap(i))
	}
	return d
}

func (d *dp) cmd(args ...string) string {
	d.t.Helper()
	out, err := d.sw.Cmd(args...)
	if err != nil {
		d.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (d *dp) pcap(port int) string { return filepath.Join(d.sw.Dir, fmt.Sprintf("p%d.pcap", port)) }

// install renders and installs the pipeline, as a flow sync does.
func (d *dp) install(in Input) Output {
	d.t.Helper()
	in.Gateway, in.Pods = d.gw, d.pods
	out := Render(in)
	if err := d.sw.OFCtl().Replace(context.Background(), out.Flows, LearnedTables...); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// pkt is a packet as the test writes and reads it.
type pkt struct {
	proto          string // tcp, udp
	src, dst       netip.Addr
	sport, dport   uint16
	flags          string // tcp: syn, syn|ack, ack
	ethSrc, ethDst string
}

func (p pkt) String() string {
	return fmt.Sprintf("%s %s -> %s %s", p.proto, netip.AddrPortFrom(p.src, p.sport), netip.AddrPortFrom(p.dst, p.dport), p.flags)
}

// send injects p as if port `from` sent it (from its own MAC to the
// gateway's, as a pod routes; from the gateway to a pod's MAC).
func (d *dp) send(from int, p pkt) {
	d.t.Helper()
	src, dst := d.mac(from), d.gw.MAC
	if from == d.gw.OFPort {
		dst = d.macOf(p.dst)
	}
	l3 := fmt.Sprintf("eth_type(0x0800),ipv4(src=%s,dst=%s,proto=%d,tos=0,ttl=64,frag=no)", p.src, p.dst, protoNum(p.proto))
	if p.src.Is6() {
		l3 = fmt.Sprintf("eth_type(0x86dd),ipv6(src=%s,dst=%s,label=0,proto=%d,tclass=0,hlimit=64,frag=no)", p.src, p.dst, protoNum(p.proto))
	}
	l4 := fmt.Sprintf("%s(src=%d,dst=%d)", p.proto, p.sport, p.dport)
	if p.proto == "tcp" {
		l4 += fmt.Sprintf(",tcp_flags(%s)", p.flags)
	}
	d.cmd("ovs-appctl", "-t", filepath.Join(d.sw.Dir, "ovs-vswitchd.ctl"), "netdev-dummy/receive", fmt.Sprintf("p%d", from),
		fmt.Sprintf("eth(src=%s,dst=%s),%s,%s", src, dst, l3, l4))
}

func protoNum(p string) int { return map[string]int{"tcp": 6, "udp": 17}[p] }

func (d *dp) mac(port int) string {
	if port == d.gw.OFPort {
		return d.gw.MAC
	}
	return fmt.Sprintf("0a:00:00:00:00:%02x", port)
}

func (d *dp) macOf(a netip.Addr) string {
	for _, p := range d.pods {
		for _, ip := range p.IPs {
			if ip == a {
				return p.MAC
			}
		}
	}
	return "0a:00:00:00:00:ff"
}

// settle lets the datapath (asynchronous) finish what it was sent.
func (d *dp) settle() { time.Sleep(50 * time.Millisecond) }

// out returns the packets a port sent since the last call (settle first).
func (d *dp) out(port int) []pkt {
	d.t.Helper()
	all := readPcap(d.t, d.pcap(port))
	got := all[d.seen[port]:]
	d.seen[port] = len(all)
	return got
}

// expect checks that the packet came out of exactly port `to` (and no
// other port) as want; want nil: out of no port.
func (d *dp) expect(to int, want *pkt) {
	d.t.Helper()
	d.settle()
	for port := 1; port <= dpPorts; port++ {
		got := d.out(port)
		switch {
		case want != nil && port == to:
			if len(got) != 1 || got[0].String() != want.String() {
				d.t.Fatalf("port %d sent %v, want %v", port, got, want)
			}
		case len(got) > 0:
			d.t.Fatalf("port %d sent %v, want nothing there (expected on %d: %v)", port, got, to, want)
		}
	}
}

// readPcap reads the Ethernet/IP/TCP|UDP packets of a capture file.
func readPcap(t *testing.T, file string) []pkt {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []pkt
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		f := b[off+16 : off+16+n]
		off += 16 + n
		p := pkt{ethDst: macString(f[0:6]), ethSrc: macString(f[6:12])}
		var l4 []byte
		var proto byte
		switch binary.BigEndian.Uint16(f[12:14]) {
		case 0x0800:
			ip := f[14:]
			p.src, p.dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
			proto, l4 = ip[9], ip[int(ip[0]&0xf)*4:]
		case 0x86dd:
			ip := f[14:]
			p.src, p.dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			proto, l4 = ip[6], ip[40:]
		default:
			continue
		}
		p.proto = map[byte]string{6: "tcp", 17: "udp"}[proto]
		p.sport, p.dport = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		if proto == 6 {
			var fl []string
			for _, x := range []struct {
				bit  byte
				name string
			}{{0x02, "syn"}, {0x10, "ack"}, {0x01, "fin"}, {0x04, "rst"}} {
				if l4[13]&x.bit != 0 {
					fl = append(fl, x.name)
				}
			}
			p.flags = strings.Join(fl, "|")
		}
		out = append(out, p)
	}
	return out
}

func macString(b []byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func a(s string) netip.Addr { return netip.MustParseAddr(s) }
