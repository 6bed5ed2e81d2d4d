// Package probe proves routability from wherever it runs: it pings a pod
// and fetches the pod's echo server over HTTP, and the echo's answer must
// name this host's own address: any other source means the traffic was
// translated (NAT) on the way. The echo server (t1route echo) is here too.
package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Reply is what the echo server answers: the caller's address as the server
// saw it. A NAT on the way shows as a source that is not the caller's.
type Reply struct {
	RemoteAddr string `json:"remoteAddr"` // ip:port
	RemoteIP   string `json:"remoteIP"`
	LocalAddr  string `json:"localAddr"` // the address the caller reached
	Hostname   string `json:"hostname,omitempty"`
}

type localAddrKey struct{}

// EchoServer answers every request with a Reply; Serve it on a listener.
func EchoServer() *http.Server {
	return &http.Server{Handler: echoHandler(), ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, localAddrKey{}, c.LocalAddr().String())
		}}
}

func echoHandler() http.Handler {
	host, _ := os.Hostname()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		local, _ := r.Context().Value(localAddrKey{}).(string)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Reply{RemoteAddr: r.RemoteAddr, RemoteIP: ip, LocalAddr: local, Hostname: host}) //nolint:errcheck
	})
}

// Result is one check's verdict, worded for a PASS/FAIL line.
type Result struct {
	OK      bool
	Message string
}

// Run pings target (a pod IP, whose echo listens on 8080, or an http URL)
// and fetches its echo, checking that the echo saw this host's own address.
func Run(ctx context.Context, target string) []Result {
	var out []Result
	add := func(ok bool, format string, args ...any) { out = append(out, Result{ok, fmt.Sprintf(format, args...)}) }
	u, err := URL(target)
	if err != nil {
		add(false, "probe %q: %v", target, err)
		return out
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		add(false, "probe %q: %s is not an IP address", target, host)
		return out
	}
	if got, total, err := ping(ctx, ip); err != nil {
		add(false, "ping %s: %v", ip, err)
	} else {
		add(got > 0, "ping %s: %d/%d replies", ip, got, total)
	}
	local, err := sourceAddr(ip)
	if err != nil {
		add(false, "http %s: no route from this host: %v", u, err)
		return out
	}
	reply, err := fetchEcho(ctx, u.String())
	switch {
	case err != nil:
		add(false, "http %s: %v", u, err)
	case reply.RemoteIP != local.String():
		add(false, "http %s: the echo saw %s but this host sent from %s: the source address was translated (NAT) on the way",
			u, reply.RemoteIP, local)
	default:
		add(true, "http %s: the echo saw this host's own address %s (no NAT)", u, local)
	}
	return out
}

// URL is the echo URL of a probe target: a pod IP (port 8080) or an http URL.
func URL(target string) (*url.URL, error) {
	if !strings.Contains(target, "://") {
		if ip, err := netip.ParseAddr(target); err == nil {
			return &url.URL{Scheme: "http", Host: net.JoinHostPort(ip.String(), "8080"), Path: "/"}, nil
		}
		return nil, fmt.Errorf("give a pod IP or an http:// URL")
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return nil, fmt.Errorf("give a pod IP or an http:// URL")
	}
	return u, nil
}

var pingReceived = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`)

func ping(ctx context.Context, ip netip.Addr) (received, sent int, err error) {
	out, _ := exec.CommandContext(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ip.String()).CombinedOutput()
	m := pingReceived.FindStringSubmatch(string(out))
	if m == nil {
		return 0, 0, fmt.Errorf("no ping summary (is ping installed?): %s", strings.TrimSpace(string(out)))
	}
	fmt.Sscan(m[1], &sent)     //nolint:errcheck
	fmt.Sscan(m[2], &received) //nolint:errcheck
	return received, sent, nil
}

// sourceAddr is the address this host's routing picks to reach ip.
func sourceAddr(ip netip.Addr) (netip.Addr, error) {
	conn, err := net.Dial("udp", net.JoinHostPort(ip.String(), "9"))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func fetchEcho(ctx context.Context, u string) (Reply, error) {
	var reply Reply
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return reply, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return reply, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &reply); err != nil || reply.RemoteIP == "" {
		return reply, fmt.Errorf("the answer is not from 't1route echo': %.80q", body)
	}
	return reply, nil
}
