//go:build linux

package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
)

// Addresses of the cluster's network. Every address is in the ranges the
// project's tests may use: 198.51.100.0/24 for the node segment behind
// the Tier-1, 203.0.113.0/24 outside it, 100.64.0.0/16 for Services and
// 100.96.0.0/11 for pods.
const (
	RouterNodeIP   = "198.51.100.1"
	ControlPlaneIP = "198.51.100.2"
	RouterOuterIP  = "203.0.113.1"
	NSXManagerIP   = "203.0.113.5"
	ExternalIP     = "203.0.113.10"
	ServiceCIDR    = "100.64.0.0/16"
	ClusterCIDR    = "100.96.0.0/11"
	APIServerPort  = 6443
)

// NodeIP is the address of the i-th node (0-based) on the node segment.
func NodeIP(i int) string { return fmt.Sprintf("198.51.100.%d", 11+i) }

// run runs a command and returns an error carrying its output.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runAll runs commands in order and stops at the first error.
func runAll(cmds ...[]string) error {
	for _, c := range cmds {
		if err := run(c...); err != nil {
			return err
		}
	}
	return nil
}

// addNetns creates a network namespace with loopback up and records it.
func (c *Cluster) addNetns(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	c.state.addNetns(name)
	return run("ip", "-n", name, "link", "set", "lo", "up")
}

// wire connects host namespace ns (interface eth0, addr/24, default route
// via gw) to bridge br in the router namespace (port routerPort).
func wire(router, br, routerPort, ns, addr, gw string) error {
	return runAll(
		[]string{"ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", routerPort, "netns", router},
		[]string{"ip", "-n", router, "link", "set", routerPort, "master", br, "up"},
		[]string{"ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", ns, "route", "add", "default", "via", gw},
	)
}

// buildNetwork creates the Tier-1 router namespace with its two segments,
// the control plane, NSX Manager and external host namespaces, and one
// namespace per node.
func (c *Cluster) buildNetwork() error {
	p := c.state.Prefix
	c.RouterNS, c.ControlPlaneNS, c.NSXNS, c.ExternalNS = p+"-t1", p+"-cp", p+"-nsx", p+"-ext"
	for _, ns := range []string{c.RouterNS, c.ControlPlaneNS, c.NSXNS, c.ExternalNS} {
		if err := c.addNetns(ns); err != nil {
			return err
		}
	}
	r := c.RouterNS
	if err := runAll(
		[]string{"ip", "-n", r, "link", "add", "nodes", "type", "bridge"},
		[]string{"ip", "-n", r, "addr", "add", RouterNodeIP + "/24", "dev", "nodes"},
		[]string{"ip", "-n", r, "link", "set", "nodes", "up"},
		[]string{"ip", "-n", r, "link", "add", "outside", "type", "bridge"},
		[]string{"ip", "-n", r, "addr", "add", RouterOuterIP + "/24", "dev", "outside"},
		[]string{"ip", "-n", r, "link", "set", "outside", "up"},
		[]string{"ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	); err != nil {
		return err
	}
	if err := wire(r, "nodes", "r-cp", c.ControlPlaneNS, ControlPlaneIP, RouterNodeIP); err != nil {
		return err
	}
	if err := wire(r, "outside", "r-nsx", c.NSXNS, NSXManagerIP, RouterOuterIP); err != nil {
		return err
	}
	if err := wire(r, "outside", "r-ext", c.ExternalNS, ExternalIP, RouterOuterIP); err != nil {
		return err
	}
	for i, n := range c.Nodes {
		if err := c.addNetns(n.NS); err != nil {
			return err
		}
		if err := wire(r, "nodes", fmt.Sprintf("r-n%d", i), n.NS, n.IP, RouterNodeIP); err != nil {
			return err
		}
	}
	return nil
}

// forwarder copies TCP connections between a listener and a dial function;
// it ends its listeners on close.
type forwarder struct {
	mu  sync.Mutex
	lns []net.Listener
}

func (f *forwarder) serve(ln net.Listener, dial func(ctx context.Context) (net.Conn, error)) {
	f.mu.Lock()
	f.lns = append(f.lns, ln)
	f.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := dial(context.Background())
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{})
				go func() { io.Copy(out, in); closeWrite(out); close(done) }() //nolint:errcheck
				io.Copy(in, out)                                               //nolint:errcheck
				closeWrite(in)
				<-done
			}()
		}
	}()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite() //nolint:errcheck
	}
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ln := range f.lns {
		ln.Close()
	}
	f.lns = nil
}

// inNetns runs fn on an OS thread switched into the named network
// namespace; sockets fn creates belong to that namespace for good. The
// thread goes back to its namespace afterwards, or is discarded.
func inNetns(name string, fn func() error) error {
	return InNetnsPath("/run/netns/"+name, fn) // where ip netns (and netns.GetFromName) keeps them
}

// InNetnsPath runs fn on an OS thread switched into the network namespace
// at path; sockets fn creates belong to it for good.
func InNetnsPath(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		errc <- fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread ends with this goroutine
		}
	}()
	return <-errc
}

// listenInNetns listens on a TCP address inside a namespace.
func listenInNetns(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// dialInNetns connects to a TCP address from inside a namespace.
func dialInNetns(ctx context.Context, ns, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(ns, func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}
