//go:build integration && e2e

// Package e2e proves routability with real packets: network namespaces for a
// Tier-1 router (realized by nsxsim), two nodes each with its own Open vSwitch
// (userspace datapath) and t1route agent, pods attached by t1route-cni through
// libcni as a container runtime does, and an external host.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
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
)

// lab owns every namespace, link and process it creates, and removes them.
type lab struct {
	t      testing.TB
	prefix string // short, unique: link and namespace names start with it
	dir    string
	mu     sync.Mutex
	procs  []*exec.Cmd
	nss    []string
	undo   []func()
	down   sync.Once
}

func newLab(t testing.TB) *lab {
	b := make([]byte, 2)
	rand.Read(b) //nolint:errcheck
	l := &lab{t: t, prefix: "t1e" + hex.EncodeToString(b), dir: t.TempDir()}
	t.Cleanup(l.teardown)
	return l
}

func (l *lab) name(s string) string { return l.prefix + s }

// run runs a command and fails the test on error.
func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// try runs a command and returns its output and error.
func try(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// netns creates a network namespace with loopback up.
func (l *lab) netns(short string) string {
	name := l.name(short)
	l.run("ip", "netns", "add", name)
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	l.run("ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// link connects two namespaces with a veth, addressing each end (CIDR or "").
func (l *lab) link(nsA, ifA, addrA, nsB, ifB, addrB string) {
	l.run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	for _, e := range [][3]string{{nsA, ifA, addrA}, {nsB, ifB, addrB}} {
		if e[2] != "" {
			l.run("ip", "-n", e[0], "addr", "add", e[2], "dev", e[1])
		}
		l.run("ip", "-n", e[0], "link", "set", e[1], "up")
	}
}

// start runs a long-lived process inside a namespace ("": this one); its output goes to a
// log file under the lab directory.
func (l *lab) start(ns, logName string, env []string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	cmd.Env = append(os.Environ(), env...)
	f, err := os.Create(filepath.Join(l.dir, logName+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %v: %v", args, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd
}

func (l *lab) logFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
	return string(b)
}

func stopProc(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) //nolint:errcheck
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck
		<-done
	}
}

func (l *lab) teardown() { l.down.Do(l.teardownOnce) }

func (l *lab) teardownOnce() {
	for i := len(l.undo) - 1; i >= 0; i-- {
		l.undo[i]()
	}
	for i := len(l.procs) - 1; i >= 0; i-- {
		stopProc(l.procs[i])
	}
	for _, ns := range l.nss {
		try("ip", "netns", "del", ns) //nolint:errcheck
	}
}

// leftovers lists what of this lab still exists: namespaces, links in the
// root namespace, processes. Empty after teardown.
func (l *lab) leftovers() []string {
	var left []string
	out, _ := try("ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, l.prefix) {
			left = append(left, "netns "+strings.Fields(line)[0])
		}
	}
	out, _ = try("ip", "-o", "link", "show")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, l.prefix) || strings.Contains(line, "t1r-gw0") {
			left = append(left, "link "+line)
		}
	}
	out, _ = try("pgrep", "-af", l.dir)
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) != "" {
			left = append(left, "process "+line)
		}
	}
	return left
}

// nodeOVS runs one node's ovsdb-server and ovs-vswitchd (userspace datapath)
// inside the node's namespace, with every file under dir.
type nodeOVS struct {
	ns, dir string
}

func (o nodeOVS) env() []string {
	return []string{"OVS_RUNDIR=" + o.dir, "OVS_DBDIR=" + o.dir, "OVS_LOGDIR=" + o.dir, "OVS_SYSCONFDIR=" + o.dir, "OVS_PKGDATADIR=/usr/share/openvswitch"}
}

func (o nodeOVS) cmd(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", o.ns}, args...)...)
	cmd.Env = append(os.Environ(), o.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lab) startOVS(ns string) nodeOVS {
	o := nodeOVS{ns: ns, dir: filepath.Join(l.dir, ns+"-ovs")}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	must := func(out string, err error) {
		if err != nil {
			l.t.Fatalf("ovs in %s: %v\n%s", ns, err, out)
		}
	}
	must(o.cmd("ovsdb-tool", "create", o.dir+"/conf.db", "/usr/share/openvswitch/vswitch.ovsschema"))
	must(o.cmd("ovsdb-server", o.dir+"/conf.db", "--remote=punix:"+o.dir+"/db.sock", "--pidfile="+o.dir+"/ovsdb-server.pid",
		"--unixctl="+o.dir+"/ovsdb-server.ctl", "--log-file="+o.dir+"/ovsdb-server.log", "--detach"))
	l.undo = append(l.undo, func() {
		o.cmd("ovs-vsctl", "--db=unix:"+o.dir+"/db.sock", "--timeout=5", "--if-exists", "del-br", "br-int") //nolint:errcheck
		o.cmd("ovs-appctl", "-t", o.dir+"/ovs-vswitchd.ctl", "exit")                                        //nolint:errcheck
		o.cmd("ovs-appctl", "-t", o.dir+"/ovsdb-server.ctl", "exit")                                        //nolint:errcheck
	})
	must(o.cmd("ovs-vsctl", "--db=unix:"+o.dir+"/db.sock", "--no-wait", "init"))
	must(o.startVSwitchd())
	return o
}

// startVSwitchd starts (or restarts) the node's ovs-vswitchd.
func (o nodeOVS) startVSwitchd() (string, error) {
	return o.cmd("ovs-vswitchd", "unix:"+o.dir+"/db.sock", "--pidfile="+o.dir+"/ovs-vswitchd.pid",
		"--unixctl="+o.dir+"/ovs-vswitchd.ctl", "--log-file="+o.dir+"/ovs-vswitchd.log", "--detach")
}

// restartOVSDB stops and starts ovsdb-server on the same database, as an
// OVS upgrade would.
func (o nodeOVS) restartOVSDB() (string, error) {
	if out, err := o.stopDaemon("ovsdb-server"); err != nil {
		return out, err
	}
	return o.cmd("ovsdb-server", o.dir+"/conf.db", "--remote=punix:"+o.dir+"/db.sock", "--pidfile="+o.dir+"/ovsdb-server.pid",
		"--unixctl="+o.dir+"/ovsdb-server.ctl", "--log-file="+o.dir+"/ovsdb-server.log", "--detach")
}

// ovsdbMonitors is how many monitors ovsdb-server serves (its memory/show
// figure): one per connected client that watches the database, such as
// ovs-vswitchd and the agent.
func (o nodeOVS) ovsdbMonitors() (int, error) {
	out, err := o.cmd("ovs-appctl", "-t", o.dir+"/ovsdb-server.ctl", "memory/show")
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "monitors:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, nil // memory/show leaves out counts that are zero
}

// stopVSwitchd stops ovs-vswitchd as a crash or upgrade would (its flows go
// with it) and waits until the process is gone.
func (o nodeOVS) stopVSwitchd() (string, error) { return o.stopDaemon("ovs-vswitchd") }

// stopDaemon asks an OVS daemon to exit and waits until it has.
func (o nodeOVS) stopDaemon(name string) (string, error) {
	b, err := os.ReadFile(o.dir + "/" + name + ".pid")
	if err != nil {
		return "", err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", err
	}
	if out, err := o.cmd("ovs-appctl", "-t", o.dir+"/"+name+".ctl", "exit"); err != nil {
		return out, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return "", nil
		}
	}
	return "", fmt.Errorf("%s (pid %d) still running 10 s after exit", name, pid)
}

// forwardIntoNetns makes a TCP address of the root namespace (the
// kube-apiserver on loopback) reachable at the same address inside a
// namespace, so a node agent can use the test's kubeconfig unchanged
// without any address or route being added to the root namespace.
//
// No thread of this process ever enters another namespace: a forwarder
// process started in the namespace (this test binary, see TestMain)
// listens on the address and relays each connection over a unix socket,
// which namespaces do not isolate, to this process, which dials the real
// address. The first version switched a locked thread into the namespace
// to listen and relied on the thread ending with its goroutine; on the
// main thread Go cannot end it, and in CI the agents' connections were
// then refused for minutes (a thread of this process was seen in a node's
// namespace).
func (l *lab) forwardIntoNetns(ns, addr string) {
	l.t.Helper()
	sock := filepath.Join(l.dir, ns+".fwd")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		l.t.Fatalf("forward %s into %s: %v", addr, ns, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.undo = append(l.undo, func() { cancel(); ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				out, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					in.Close()
					return
				}
				relay(in, out)
			}()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	logName := "forward-" + ns
	l.start(ns, logName, []string{forwardEnv + "=" + addr + "=" + sock}, self, "-test.run=^$")
	integration.Eventually(l.t, 10*time.Second, "the forwarder into "+ns, func() (bool, string) {
		return strings.Contains(l.logFile(logName), forwarderReady), l.logFile(logName)
	})
}

// forwardEnv, when set to "ADDR=SOCKET", makes the test binary a forwarder
// (see TestMain): it listens on the TCP address ADDR of the namespace it
// runs in and relays every connection to the unix socket SOCKET.
const (
	forwardEnv     = "T1ROUTE_E2E_FORWARD"
	forwarderReady = "forwarder listening"
)

// runForwarder is the forwarder process; it runs until killed.
func runForwarder(spec string) error {
	addr, sock, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("%s=%q: want ADDR=SOCKET", forwardEnv, spec)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(forwarderReady, addr, "->", sock)
	for {
		in, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			out, err := net.Dial("unix", sock)
			if err != nil {
				fmt.Println(err)
				in.Close()
				return
			}
			relay(in, out)
		}()
	}
}

// relay copies both ways until either side ends, then closes both.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(a, b); done <- struct{}{} }() //nolint:errcheck
	go func() { io.Copy(b, a); done <- struct{}{} }() //nolint:errcheck
	<-done
	a.Close()
	b.Close()
}

// inNetns runs a command inside a namespace and returns its output.
func inNetns(ns string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
