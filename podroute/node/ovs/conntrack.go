package ovs

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Conntrack reads and flushes ovs-vswitchd's connection tracker (the
// userspace one, or the kernel's through it) with ovs-appctl dpctl/.
type Conntrack struct {
	RunDir string // OVS run directory (ovs-vswitchd's pid file and control socket)
}

// Tuple is one direction of a tracked connection.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Conn is one connection-tracking entry.
type Conn struct {
	Proto       string // tcp, udp, icmp, ...
	Orig, Reply Tuple
	Zone        uint16
	Mark        uint32
}

// target is ovs-vswitchd's control socket: <RunDir>/ovs-vswitchd.ctl if it
// was started with that name, else the default <RunDir>/ovs-vswitchd.<pid>.ctl.
func (c Conntrack) target() (string, error) {
	if p := filepath.Join(c.RunDir, "ovs-vswitchd.ctl"); fileExists(p) {
		return p, nil
	}
	b, err := os.ReadFile(filepath.Join(c.RunDir, "ovs-vswitchd.pid"))
	if err != nil {
		return "", fmt.Errorf("find ovs-vswitchd's control socket: %w", err)
	}
	return filepath.Join(c.RunDir, "ovs-vswitchd."+strings.TrimSpace(string(b))+".ctl"), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (c Conntrack) appctl(ctx context.Context, args ...string) (string, error) {
	t, err := c.target()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "ovs-appctl", append([]string{"-t", t}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovs-appctl %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()+" "+out.String()))
	}
	return out.String(), nil
}

// Dump returns the entries of a conntrack zone.
func (c Conntrack) Dump(ctx context.Context, zone uint16) ([]Conn, error) {
	out, err := c.appctl(ctx, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", zone))
	if err != nil {
		return nil, err
	}
	return ParseConntrack(out), nil
}

// Flush removes the entries of zone whose original direction is orig
// (proto "udp", "tcp"; the userspace tracker matches the original, pre-NAT
// tuple). No error if there is none.
func (c Conntrack) Flush(ctx context.Context, zone uint16, proto string, orig Tuple) error {
	_, err := c.appctl(ctx, "dpctl/flush-conntrack", fmt.Sprintf("zone=%d", zone), FlushTuple(proto, orig))
	return err
}

// FlushTuple writes a tuple as flush-conntrack takes it.
func FlushTuple(proto string, t Tuple) string {
	num := map[string]int{"icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132}[proto]
	if t.Src.Is4() {
		return fmt.Sprintf("ct_nw_src=%s,ct_nw_dst=%s,ct_nw_proto=%d,ct_tp_src=%d,ct_tp_dst=%d", t.Src, t.Dst, num, t.SrcPort, t.DstPort)
	}
	return fmt.Sprintf("ct_ipv6_src=%s,ct_ipv6_dst=%s,ct_nw_proto=%d,ct_tp_src=%d,ct_tp_dst=%d", t.Src, t.Dst, num, t.SrcPort, t.DstPort)
}

// ParseConntrack reads dpctl/dump-conntrack output, e.g.
//
//	udp,orig=(src=100.96.1.2,dst=100.64.0.10,sport=44538,dport=80),reply=(src=100.96.1.3,dst=100.96.1.2,sport=8080,dport=44538),zone=65000,mark=3
//
// Lines it cannot read are skipped.
func ParseConntrack(out string) []Conn {
	var conns []Conn
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var c Conn
		ok := true
		for i, part := range SplitTop(line) {
			k, v, _ := strings.Cut(part, "=")
			switch {
			case i == 0:
				c.Proto = part
			case k == "orig":
				c.Orig, ok = parseTuple(v)
			case k == "reply":
				c.Reply, ok = parseTuple(v)
			case k == "zone":
				n, err := strconv.ParseUint(v, 10, 16)
				c.Zone, ok = uint16(n), err == nil
			case k == "mark":
				n, err := strconv.ParseUint(v, 0, 32)
				c.Mark, ok = uint32(n), err == nil
			}
			if !ok {
				break
			}
		}
		if ok && c.Orig.Src.IsValid() && c.Reply.Src.IsValid() {
			conns = append(conns, c)
		}
	}
	return conns
}

func parseTuple(v string) (Tuple, bool) {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "("), ")")
	var t Tuple
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "src":
			t.Src, err = netip.ParseAddr(val)
		case "dst":
			t.Dst, err = netip.ParseAddr(val)
		case "sport":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 16)
			t.SrcPort = uint16(n)
		case "dport":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 16)
			t.DstPort = uint16(n)
		}
		if err != nil {
			return Tuple{}, false
		}
	}
	return t, true
}
