package ovs

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// startOVSDB runs a private ovsdb-server (no ovs-vswitchd: ports get no
// OpenFlow numbers, which these tests do not need).
func startOVSDB(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ovsdb-server"); err != nil {
		t.Skip("ovsdb-server not installed (apt-get install -y openvswitch-switch; CI has it)")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
	run("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+DBSocket(dir), "--pidfile="+filepath.Join(dir, "ovsdb.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb.ctl"), "--log-file="+filepath.Join(dir, "ovsdb.log"), "--detach")
	t.Cleanup(func() { exec.Command("ovs-appctl", "-t", filepath.Join(dir, "ovsdb.ctl"), "exit").Run() }) //nolint:errcheck
	run("ovs-vsctl", "--db=unix:"+DBSocket(dir), "--no-wait", "init")
	return dir
}

// Two clients, as two CNI invocations: a port one adds is in the other's
// view as soon as its Barrier returns, every time.
func TestBarrierSeesOtherClientsCommits(t *testing.T) {
	dir := startOVSDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := DialOVSDB(ctx, dir, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := DialOVSDB(ctx, dir, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.EnsureBridge(ctx, "br-int", "netdev"); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureBridge(ctx, "br-int", "netdev"); err != nil {
		t.Fatalf("EnsureBridge is not idempotent: %v", err)
	}
	if err := b.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		name := fmt.Sprintf("p%d", i)
		if err := a.EnsurePort(ctx, "br-int", name, "", map[string]string{"t1route-container-id": name}); err != nil {
			t.Fatal(err)
		}
		if err := b.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		ports, err := b.Ports(ctx, "br-int")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range ports {
			found = found || p.Name == name
		}
		if !found {
			t.Fatalf("iteration %d: port %s committed by another client is not visible after Barrier", i, name)
		}
	}
	if err := a.DeletePort(ctx, "br-int", "p0"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeletePort(ctx, "br-int", "p0"); err != nil {
		t.Fatalf("DeletePort of an absent port: %v", err)
	}
}

// PinMAC keeps the MAC an internal port was given: the interface's
// requested mac becomes its mac_in_use; pinned once, never changed again.
func TestPinMAC(t *testing.T) {
	dir := startOVSDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := DialOVSDB(ctx, dir, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.EnsureBridge(ctx, "br-int", "netdev"); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePort(ctx, "br-int", "gw0", "internal", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.PinMAC(ctx, "gw0"); err != nil {
		t.Fatalf("before the switch gave it a MAC: %v", err)
	}
	vsctl := func(args ...string) string {
		out, err := exec.Command("ovs-vsctl", append([]string{"--db=unix:" + DBSocket(dir), "--no-wait"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-vsctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// What ovs-vswitchd writes when it builds the device.
	vsctl("set", "interface", "gw0", `mac_in_use="0a:00:00:00:00:01"`)
	for range 2 {
		if err := db.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.PinMAC(ctx, "gw0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := vsctl("get", "interface", "gw0", "mac"); got != "\"0a:00:00:00:00:01\"\n" {
		t.Fatalf("mac %q, want the one in use", got)
	}
	vsctl("set", "interface", "gw0", `mac_in_use="0a:00:00:00:00:02"`) // a restart that ignored it
	if err := db.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.PinMAC(ctx, "gw0"); err != nil {
		t.Fatal(err)
	}
	if got := vsctl("get", "interface", "gw0", "mac"); got != "\"0a:00:00:00:00:01\"\n" {
		t.Fatalf("mac %q changed after it was pinned", got)
	}
}
