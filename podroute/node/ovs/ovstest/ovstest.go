// Package ovstest runs a private Open vSwitch for tests: ovsdb-server and
// ovs-vswitchd with OVS's in-memory "dummy" datapath (its own test
// provider: no kernel device, no network namespace, no fixed path), and a
// bridge on it. Its flow table is a real ovs-vswitchd's: ovs-ofctl, bundles,
// diff-flows, learn and conntrack behave as on a node.
package ovstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// Switch is a running private OVS.
type Switch struct {
	Dir    string // its run directory
	Bridge string
}

// OFCtl programs the switch's bridge.
func (s Switch) OFCtl() ovs.OFCtl { return ovs.OFCtl{RunDir: s.Dir, Bridge: s.Bridge} }

// Cmd runs an OVS tool against the switch (OVS_RUNDIR set).
func (s Switch) Cmd(args ...string) ([]byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir)
	return cmd.CombinedOutput()
}

// Start runs the switch, with bridge br and ports (dummy, OpenFlow port
// numbers 1..ports), and stops it when the test ends. It skips the test
// when Open vSwitch is not installed.
func Start(t testing.TB, ports int) Switch {
	t.Helper()
	for _, bin := range []string{"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install -y openvswitch-switch; CI has it)", bin)
		}
	}
	s := Switch{Dir: t.TempDir(), Bridge: "br"}
	run := func(args ...string) {
		t.Helper()
		if out, err := s.Cmd(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	db := "unix:" + ovs.DBSocket(s.Dir)
	run("ovsdb-tool", "create", filepath.Join(s.Dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
	run("ovsdb-server", filepath.Join(s.Dir, "conf.db"), "--remote=p"+db, "--pidfile="+filepath.Join(s.Dir, "ovsdb.pid"),
		"--unixctl="+filepath.Join(s.Dir, "ovsdb.ctl"), "--log-file="+filepath.Join(s.Dir, "ovsdb.log"), "--detach")
	t.Cleanup(func() { s.Cmd("ovs-appctl", "-t", filepath.Join(s.Dir, "ovsdb.ctl"), "exit") }) //nolint:errcheck
	run("ovs-vsctl", "--db="+db, "--no-wait", "init")
	run("ovs-vswitchd", "--enable-dummy=override", db, "--pidfile="+filepath.Join(s.Dir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(s.Dir, "ovs-vswitchd.ctl"), "--log-file="+filepath.Join(s.Dir, "ovs-vswitchd.log"), "--detach")
	t.Cleanup(func() { s.Cmd("ovs-appctl", "-t", filepath.Join(s.Dir, "ovs-vswitchd.ctl"), "exit") }) //nolint:errcheck
	args := []string{"ovs-vsctl", "--db=" + db, "--timeout=10", "add-br", s.Bridge, "--", "set", "bridge", s.Bridge,
		"datapath_type=dummy", "protocols=OpenFlow13"}
	for i := 1; i <= ports; i++ {
		p := fmt.Sprintf("p%d", i)
		args = append(args, "--", "add-port", s.Bridge, p, "--", "set", "interface", p, "type=dummy", fmt.Sprintf("ofport_request=%d", i))
	}
	run(args...)
	o := s.OFCtl()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := o.Dump(context.Background()); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("the bridge never answered: %v", err)
		}
	}
}
