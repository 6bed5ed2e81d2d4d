//go:build integration && e2e

package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	corev1 "k8s.io/api/core/v1"

	"github.com/t1route/t1route/podroute/probe"
)

// Continuous probes for tests of what traffic sees while something
// happens: every 100 ms an ICMP echo and a UDP datagram, and a TCP
// connection held open carrying a request every 100 ms; or, for traffic
// policy denies, a new TCP connection (or datagram, or echo) every 100 ms
// that must never be answered. Clients run in this process, their sockets
// in the source's network namespace; servers are the targets' own echo
// (t1route echo --udp) and their kernel (ICMP).

const probeInterval = 100 * time.Millisecond

// endpoint is where a probe runs from or to.
type endpoint struct {
	name  string
	netns string // a path: /proc/PID/ns/net or /run/netns/NAME
	ip    string
}

// podEndpoint is a pod's network namespace (its sandbox's) and address.
func (c *Cluster) podEndpoint(pod *corev1.Pod) (endpoint, error) {
	pids, err := c.podPids(pod, "pod"+string(pod.UID))
	if err != nil {
		return endpoint{}, err
	}
	// Any process of the pod shares its network namespace: the sandbox's is
	// the first that started, but order in the cgroup is not guaranteed.
	return endpoint{name: pod.Name, netns: fmt.Sprintf("/proc/%d/ns/net", pids[0]), ip: pod.Status.PodIP}, nil
}

func (c *Cluster) externalEndpoint() endpoint {
	return endpoint{name: "external", netns: "/run/netns/" + c.ExternalNS, ip: ExternalIP}
}

type sample struct {
	at time.Time // sent (datagrams, echoes, connection attempts) or answered (held-open TCP)
	ok bool
}

// stream is one probe: a kind of packet from one endpoint to another.
type stream struct {
	name     string
	kind     string // icmp, udp, tcp (held open), connect (new connections)
	denied   bool   // policy denies it: every answer is a failure
	from, to endpoint

	mu      sync.Mutex
	samples []sample
	pending map[int]int // datagram/echo sequence -> index in samples
	breaks  []time.Time // held-open connections that broke
	// breakErrs say why each broke, in order.
	breakErrs []string
	stop      chan struct{}
	done      sync.WaitGroup
}

func (s *stream) add(sm sample) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sm)
	return len(s.samples) - 1
}

func (s *stream) answered(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 && i < len(s.samples) {
		s.samples[i].ok = true
	}
}

func (s *stream) broke(at time.Time, why error) {
	s.mu.Lock()
	s.breaks = append(s.breaks, at)
	s.breakErrs = append(s.breakErrs, fmt.Sprintf("broke %s: %v", at.Format("15:04:05.000"), why))
	s.mu.Unlock()
}

func (s *stream) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
}

func (s *stream) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// startStream starts probing; it returns once the socket is set up.
func startStream(name, kind string, denied bool, from, to endpoint) (*stream, error) {
	s := &stream{name: name, kind: kind, denied: denied, from: from, to: to, pending: map[int]int{}, stop: make(chan struct{})}
	var err error
	switch kind {
	case "icmp":
		err = s.runICMP()
	case "udp":
		err = s.runUDP()
	case "tcp":
		err = s.runTCP()
	case "connect":
		err = s.runConnect()
	default:
		err = fmt.Errorf("probe kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", name, err)
	}
	return s, nil
}

// every calls fn every probeInterval until the stream stops.
func (s *stream) every(fn func(seq int)) {
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		for seq := 1; ; seq++ {
			fn(seq)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *stream) runICMP() error {
	var conn *icmp.PacketConn
	if err := InNetnsPath(s.from.netns, func() (err error) {
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	id := int(fnv16(s.name))
	dst := &net.IPAddr{IP: net.ParseIP(s.to.ip)}
	s.done.Add(1)
	go func() { // replies (a raw socket sees every ICMP packet of the namespace: keep ours)
		defer s.done.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id {
				s.mu.Lock()
				i, ok := s.pending[e.Seq]
				s.mu.Unlock()
				if ok {
					s.answered(i)
				}
			}
		}
	}()
	s.every(func(seq int) {
		b, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq & 0xffff, Data: []byte("t1route")}}).Marshal(nil)
		i := s.add(sample{at: time.Now()})
		s.mu.Lock()
		s.pending[seq&0xffff] = i
		s.mu.Unlock()
		_, _ = conn.WriteTo(b, dst)
	})
	go func() { <-s.stop; conn.Close() }()
	return nil
}

func (s *stream) runUDP() error {
	var conn net.PacketConn
	if err := InNetnsPath(s.from.netns, func() (err error) {
		conn, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		return err
	}
	dst := &net.UDPAddr{IP: net.ParseIP(s.to.ip), Port: 8080}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var r probe.UDPReply
			if json.Unmarshal(buf[:n], &r) != nil {
				continue
			}
			seq, err := strconv.Atoi(r.Data)
			if err != nil {
				continue
			}
			s.mu.Lock()
			i, ok := s.pending[seq]
			s.mu.Unlock()
			if ok {
				s.answered(i)
			}
		}
	}()
	s.every(func(seq int) {
		i := s.add(sample{at: time.Now()})
		s.mu.Lock()
		s.pending[seq] = i
		s.mu.Unlock()
		_, _ = conn.WriteTo([]byte(strconv.Itoa(seq)), dst)
	})
	go func() { <-s.stop; conn.Close() }()
	return nil
}

// tcpBreakAfter is how long a held-open connection may go unanswered before
// it counts as broken (TCP retransmits meanwhile: a longer outage that the
// connection survives is a gap, not a break).
const tcpBreakAfter = 60 * time.Second

func (s *stream) dial() (net.Conn, error) {
	var conn net.Conn
	err := InNetnsPath(s.from.netns, func() (err error) {
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(s.to.ip, "8080"), 2*time.Second)
		return err
	})
	return conn, err
}

// runTCP holds a connection open to the target's HTTP echo and sends a
// request on it every 100 ms; a connection that fails is counted broken and
// replaced.
func (s *stream) runTCP() error {
	conn, err := s.dial()
	if err != nil {
		return err
	}
	var current sync.Mutex // guards conn against the closer below
	s.done.Add(1)
	go func() { // a stop ends a request waiting for its answer
		defer s.done.Done()
		<-s.stop
		current.Lock()
		if conn != nil {
			conn.Close()
		}
		current.Unlock()
	}()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		req := []byte("GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
		for !s.stopped() {
			current.Lock()
			c := conn
			current.Unlock()
			if c == nil {
				select {
				case <-s.stop:
					return
				case <-time.After(time.Second):
				}
				c, err := s.dial()
				if err != nil {
					continue
				}
				current.Lock()
				conn = c
				current.Unlock()
				if s.stopped() {
					c.Close()
					return
				}
			}
			current.Lock()
			c = conn
			current.Unlock()
			r := bufio.NewReader(c)
			var why error // what ended the connection
			for !s.stopped() {
				_ = c.SetDeadline(time.Now().Add(tcpBreakAfter))
				if _, why = c.Write(req); why != nil {
					break
				}
				resp, err := http.ReadResponse(r, nil)
				if why = err; err != nil {
					break
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %s", resp.Status)
				}
				if why = err; err != nil {
					break
				}
				s.add(sample{at: time.Now(), ok: true})
				select {
				case <-s.stop:
				case <-time.After(probeInterval):
				}
			}
			c.Close()
			current.Lock()
			conn = nil
			current.Unlock()
			if !s.stopped() {
				s.broke(time.Now(), why)
			}
		}
	}()
	return nil
}

// runConnect opens a new connection every 100 ms (traffic that must be
// denied: a connection is a failure).
func (s *stream) runConnect() error {
	port := "8080"
	if s.to.name == "nsx-manager" {
		port = "443"
	}
	addr := net.JoinHostPort(s.to.ip, port)
	// One dialer thread in the namespace, reused: a socket takes the
	// namespace of the thread that creates it.
	reqs := make(chan chan bool)
	errc := make(chan error, 1)
	go func() {
		errc <- InNetnsPath(s.from.netns, func() error {
			for {
				select {
				case <-s.stop:
					return nil
				case reply := <-reqs:
					c, err := net.DialTimeout("tcp4", addr, 300*time.Millisecond)
					if err == nil {
						c.Close()
					}
					reply <- err == nil
				}
			}
		})
	}()
	s.every(func(int) {
		reply := make(chan bool, 1)
		at := time.Now()
		select {
		case reqs <- reply:
		case <-s.stop:
			return
		}
		s.add(sample{at: at, ok: <-reply})
	})
	return nil
}

func fnv16(s string) uint16 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return uint16(h ^ h>>16)
}

// streamStats is what a stream saw in a window.
type streamStats struct {
	name              string
	probes, lost      int
	maxGap            time.Duration
	broken, succeeded int
}

// window summarises the stream between from and to. Datagrams and echoes
// sent up to a second before to are judged (the rest may still be in
// flight); the gap counts from the last success before from.
func (s *stream) window(from, to time.Time) streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := streamStats{name: s.name}
	if s.kind != "tcp" {
		to = to.Add(-time.Second) // later datagrams and echoes may still be in flight
	}
	last := time.Time{}
	for _, sm := range s.samples {
		if sm.at.Before(from) {
			if sm.ok {
				last = sm.at
			}
			continue
		}
		if sm.at.After(to) {
			break
		}
		st.probes++
		if !sm.ok {
			st.lost++
			continue
		}
		st.succeeded++
		if !last.IsZero() && sm.at.Sub(last) > st.maxGap {
			st.maxGap = sm.at.Sub(last)
		}
		last = sm.at
	}
	if !last.IsZero() && to.Sub(last) > st.maxGap && !s.denied {
		st.maxGap = to.Sub(last) // still silent at the end
	}
	for _, b := range s.breaks {
		if !b.Before(from) && !b.After(to) {
			st.broken++
		}
	}
	return st
}

// timeline describes the stream's samples between from and to where it was
// not answering: each run of failures (datagrams, echoes) or each wait
// longer than 300 ms (held connections), with its times.
func (s *stream) timeline(from, to time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	var prev time.Time
	var failStart time.Time
	fails := 0
	for _, sm := range s.samples {
		if sm.at.Before(from) || sm.at.After(to) {
			if sm.ok {
				prev = sm.at
			}
			continue
		}
		switch {
		case !sm.ok:
			if fails == 0 {
				failStart = sm.at
			}
			fails++
		case fails > 0:
			parts = append(parts, fmt.Sprintf("%d lost %s-%s", fails, failStart.Format("15:04:05.000"), sm.at.Format("15:04:05.000")))
			fails = 0
		case s.kind == "tcp" && !prev.IsZero() && sm.at.Sub(prev) > 300*time.Millisecond:
			parts = append(parts, fmt.Sprintf("waited %d ms until %s", sm.at.Sub(prev).Milliseconds(), sm.at.Format("15:04:05.000")))
		}
		if sm.ok {
			prev = sm.at
		}
	}
	for i, b := range s.breaks {
		if !b.Before(from) && !b.After(to) && i < len(s.breakErrs) {
			parts = append(parts, s.breakErrs[i])
		}
	}
	return strings.Join(parts, ", ")
}

// healthySince reports whether every sample of the stream in the last d
// succeeded and there was at least one.
func (s *stream) healthySince(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := time.Now().Add(-d)
	judged := time.Now().Add(-time.Second) // datagrams in flight are not judged yet
	n := 0
	for i := len(s.samples) - 1; i >= 0; i-- {
		sm := s.samples[i]
		if sm.at.Before(cut) {
			break
		}
		if s.kind != "tcp" && sm.at.After(judged) {
			continue
		}
		if !sm.ok {
			return false
		}
		n++
	}
	return n > 0
}

// probes are the streams of a test.
type probes struct {
	mu      sync.Mutex
	streams []*stream
}

func (p *probes) add(s *stream) {
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
}

// remove stops and drops the streams from or to a namespace path (a pod
// about to go away).
func (p *probes) remove(match func(*stream) bool) []*stream {
	p.mu.Lock()
	var keep, gone []*stream
	for _, s := range p.streams {
		if match(s) {
			gone = append(gone, s)
		} else {
			keep = append(keep, s)
		}
	}
	p.streams = keep
	p.mu.Unlock()
	for _, s := range gone {
		s.halt()
	}
	return gone
}

func (p *probes) all() []*stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*stream(nil), p.streams...)
}

func (p *probes) stop() {
	for _, s := range p.all() {
		s.halt()
	}
}

// waitHealthy waits until every allowed stream has answered everything for
// d, or timeout passes.
func (p *probes) waitHealthy(ctx context.Context, d, timeout time.Duration) error {
	return waitFor(ctx, timeout, "every probe answering for "+d.String(), func() (bool, error) {
		for _, s := range p.all() {
			if !s.denied && !s.healthySince(d) {
				return false, nil
			}
		}
		return true, nil
	})
}

// eventStats sums a window over every stream.
type eventStats struct {
	lost, broken, deniedPassed int
	maxGap                     time.Duration
	worst                      string // the stream with the largest gap
	lines                      []string
}

func (p *probes) window(from, to time.Time) eventStats {
	var e eventStats
	streams := p.all()
	sort.Slice(streams, func(i, j int) bool { return streams[i].name < streams[j].name })
	for _, s := range streams {
		st := s.window(from, to)
		if s.denied {
			e.deniedPassed += st.succeeded
			e.lines = append(e.lines, fmt.Sprintf("  %-34s denied: %d attempts, %d passed", s.name, st.probes, st.succeeded))
			continue
		}
		e.lost += st.lost
		e.broken += st.broken
		if st.maxGap > e.maxGap {
			e.maxGap, e.worst = st.maxGap, s.name
		}
		e.lines = append(e.lines, fmt.Sprintf("  %-34s %d probes, %d lost, max gap %d ms, %d broken %s", s.name, st.probes, st.lost, st.maxGap.Milliseconds(), st.broken, s.timeline(from, to)))
	}
	return e
}
