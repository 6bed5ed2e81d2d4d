//go:build integration && e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/t1route/t1route/integration"
	"github.com/t1route/t1route/integration/cluster"
	"github.com/t1route/t1route/podroute/node/ovs"
)

// TestSwitchRestart runs Open vSwitch as the agent pod's ovs container does
// (`t1route ovs`, no agent beside it) and checks that a pod's traffic
// through the node's gateway comes back by itself when ovs-vswitchd is
// killed, and when a second `t1route ovs` takes over from the first (a
// surge upgrade's handover): the flows and the gateway's addresses are the
// ones the flow writer saved. With the userspace datapath the gateway is a
// tap device that dies with the switch; nothing else sets its addresses
// again here. It prints each outage as a figure.
func TestSwitchRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, Open vSwitch)")
	}
	bin := integration.BuildBinaries(t)
	l := newLab(t)
	node, pod, ext := l.netns("-sw-n"), l.netns("-sw-p"), l.netns("-sw-x")
	dir := filepath.Join(l.dir, "ovs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ovsArgs := []string{bin + "/t1route", "ovs", "--run-dir", dir, "--db-dir", dir, "--log-dir", dir,
		"--system-id", "sw", "--log-format", "console", "--flow-lock", filepath.Join(dir, "flows.lock")}
	first := l.start(node, "ovs-1", nil, ovsArgs...)
	vsctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ovs-vsctl", append([]string{"--db=unix:" + filepath.Join(dir, "db.sock"), "--timeout=10"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-vsctl %v: %v\n%s\n%s", args, err, out, lastLines(l.logFile("ovs-1"), 20))
		}
		return strings.TrimSpace(string(out))
	}
	integration.Eventually(t, 20*time.Second, "t1route ovs forwarding", func() (bool, string) {
		return strings.Contains(l.logFile("ovs-1"), "ovs-vswitchd forwarding"), lastLines(l.logFile("ovs-1"), 10)
	})
	t.Cleanup(func() {
		exec.Command("ovs-vsctl", "--db=unix:"+filepath.Join(dir, "db.sock"), "--timeout=5", "--if-exists", "del-br", "br-int").Run() //nolint:errcheck
	})

	// What the agent does: a bridge, a gateway whose MAC is pinned, its
	// addresses set and saved, a pod's port, flows installed and saved.
	const gwMAC = "02:00:5e:10:00:01"
	vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure",
		"--", "add-port", "br-int", "gw0", "--", "set", "Interface", "gw0", "type=internal", `mac="`+gwMAC+`"`)
	l.link(pod, "eth0", "100.96.0.2/24", node, l.name("v"), "")
	l.run("ip", "-n", pod, "route", "add", "default", "via", "100.96.0.1")
	vsctl("add-port", "br-int", l.name("v"))
	l.link(node, "ux", "198.51.100.1/24", ext, "eth0", "198.51.100.10/24")
	for _, e := range [][2]string{{pod, "eth0"}, {node, l.name("v")}} {
		l.run("ip", "netns", "exec", e[0], "ethtool", "-K", e[1], "tx", "off") // userspace datapath: TCP checksums by the sender
	}
	l.start(ext, "echo-ext", nil, bin+"/t1route", "echo", "--listen", "198.51.100.10:8080")
	l.run("ip", "-n", ext, "route", "add", "100.96.0.0/24", "via", "198.51.100.1")
	l.run("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	const gw = "100.96.0.1/24"
	integration.Eventually(t, 10*time.Second, "the gateway device", func() (bool, string) {
		out, err := try("ip", "-n", node, "link", "show", "gw0")
		return err == nil, out
	})
	l.run("ip", "-n", node, "addr", "add", gw, "dev", "gw0")
	l.run("ip", "-n", node, "link", "set", "gw0", "up")
	of := ovs.OFCtl{RunDir: dir, Bridge: "br-int", Save: true}
	// Secure fail mode and flows of its own: a switch that came back
	// without them would forward nothing.
	if err := of.Replace(context.Background(), []string{"table=0,priority=10,actions=NORMAL"}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, "the pod reaching the external host through the gateway", func() (bool, string) {
		out, err := inNetns(pod, "ping", "-n", "-c", "1", "-W", "1", "198.51.100.10")
		return err == nil, out
	})

	outage := func(event string, disrupt func()) {
		t.Helper()
		p := startPinger(t, pod, "198.51.100.10")
		h := startHeldTCP(t, pod, "198.51.100.10:8080")
		time.Sleep(500 * time.Millisecond)
		from := time.Now()
		disrupt()
		// Replies flowing again, a second after the event at the earliest.
		integration.Eventually(t, 15*time.Second, "replies again after "+event, func() (bool, string) {
			return time.Since(from) > time.Second && time.Since(p.lastReply()) < 100*time.Millisecond && time.Since(h.lastAnswer()) < 200*time.Millisecond,
				"gateway: " + func() string { out, _ := try("ip", "-n", node, "-br", "addr", "show", "dev", "gw0"); return out }()
		})
		time.Sleep(300 * time.Millisecond)
		gap, tcpGap := p.stop(), h.stop()
		out, _ := try("ip", "-n", node, "-br", "addr", "show", "dev", "gw0")
		if !strings.Contains(out, gw) {
			t.Errorf("after %s the gateway has %q, want %s", event, out, gw)
		}
		fmt.Printf("switch: %s icmp_max_gap_ms=%d held_tcp_max_gap_ms=%d\n", event, gap.Milliseconds(), tcpGap.Milliseconds())
	}

	killed := readPid(t, filepath.Join(dir, "ovs-vswitchd.pid"))
	outage("ovs-vswitchd kill", func() {
		if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	if pid := readPid(t, filepath.Join(dir, "ovs-vswitchd.pid")); pid == killed {
		t.Fatalf("ovs-vswitchd %d still named in its pid file: not restarted", pid)
	}

	// A handover: the next `t1route ovs` waits beside the first, copying its
	// flows, and takes over when it stops.
	second := l.start(node, "ovs-2", nil, ovsArgs...)
	integration.Eventually(t, 10*time.Second, "the second t1route ovs standing by", func() (bool, string) {
		return strings.Contains(l.logFile("ovs-2"), "waiting for it to stop"), lastLines(l.logFile("ovs-2"), 10)
	})
	time.Sleep(time.Second) // it has copied the first switch's flows
	outage("handover", func() {
		if err := first.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	})
	if err := first.Wait(); err != nil {
		t.Errorf("the first t1route ovs after SIGTERM: %v\n%s", err, lastLines(l.logFile("ovs-1"), 20))
	}
	if !strings.Contains(l.logFile("ovs-2"), "taking over") {
		t.Errorf("the second t1route ovs did not log its takeover:\n%s", lastLines(l.logFile("ovs-2"), 20))
	}
	_ = second
}

// pinger pings from a namespace every 20 ms and records when replies came.
type pinger struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	replies []time.Time
	done    chan struct{}
}

func startPinger(t *testing.T, ns, ip string) *pinger {
	t.Helper()
	p := &pinger{done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-D", "-i", "0.02", "-W", "1", ip)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "[") || !strings.Contains(line, "bytes from") {
				continue
			}
			ts, err := strconv.ParseFloat(line[1:strings.Index(line, "]")], 64)
			if err != nil {
				continue
			}
			p.mu.Lock()
			p.replies = append(p.replies, time.Unix(0, int64(ts*1e9)))
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func (p *pinger) lastReply() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.replies) == 0 {
		return time.Time{}
	}
	return p.replies[len(p.replies)-1]
}

// stop ends the pings and returns the longest silence between replies.
func (p *pinger) stop() time.Duration {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	_ = p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return maxGap(p.replies)
}

// heldTCP holds a TCP connection from a namespace to an HTTP echo and
// sends a request on it every 100 ms, recording when answers came.
type heldTCP struct {
	conn    net.Conn
	mu      sync.Mutex
	answers []time.Time
	err     error
	done    chan struct{}
}

func startHeldTCP(t *testing.T, ns, addr string) *heldTCP {
	t.Helper()
	h := &heldTCP{done: make(chan struct{})}
	integration.Eventually(t, 10*time.Second, "a TCP connection to "+addr, func() (bool, string) {
		err := cluster.InNetnsPath("/run/netns/"+ns, func() (err error) {
			h.conn, err = net.DialTimeout("tcp4", addr, 2*time.Second)
			return err
		})
		return err == nil, fmt.Sprint(err)
	})
	go func() {
		defer close(h.done)
		r := bufio.NewReader(h.conn)
		req := []byte("GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
		for {
			_ = h.conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := h.conn.Write(req); err != nil {
				h.fail(err)
				return
			}
			resp, err := http.ReadResponse(r, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil {
				h.fail(err)
				return
			}
			h.mu.Lock()
			h.answers = append(h.answers, time.Now())
			h.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { h.conn.Close() })
	return h
}

func (h *heldTCP) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
}

func (h *heldTCP) lastAnswer() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.answers) == 0 {
		return time.Time{}
	}
	return h.answers[len(h.answers)-1]
}

// stop closes the connection and returns the longest silence between
// answers; a connection that broke before is a test failure.
func (h *heldTCP) stop() time.Duration {
	h.mu.Lock()
	broken := h.err
	h.mu.Unlock()
	h.conn.Close()
	<-h.done
	if broken != nil {
		panic(fmt.Sprintf("held TCP connection broke: %v", broken))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return maxGap(h.answers)
}

func maxGap(ts []time.Time) time.Duration {
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}
