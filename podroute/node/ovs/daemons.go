package ovs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Daemons runs Open vSwitch's two daemons for one node, as the ovs container
// of the t1route agent pod does, and keeps forwarding across their restarts:
//
//   - ovs-vswitchd starts with other_config:flow-restore-wait=true, so it
//     forwards nothing until its flow table is back; the table is restored
//     from what the previous switch held (see below) onto the still empty
//     table, under the flow writers' lock, and only then is the flag cleared.
//   - When ovs-vswitchd dies it is started again at once, the same way, with
//     the flows its writer saved (SavedFlowsFile): the userspace datapath's
//     flows die with it, and nothing would forward until someone rewrote them.
//   - When ovsdb-server dies it is started again; ovs-vswitchd keeps
//     forwarding meanwhile and reconnects by itself.
//   - A predecessor (another pod's ovs container during a surge upgrade)
//     still holding the database or the switch is waited for, and its flow
//     table copied every half second meanwhile, so that the switch started
//     after it comes up with the flows it had.
//   - Run returns when ctx ends (SIGTERM), after stopping both daemons and
//     clearing flow-restore-wait, so that whatever runs Open vSwitch next,
//     of any version, forwards once it has flows.
//
// What the userspace datapath loses on a restart and nothing can restore is
// its connection tracking table: see podroute/node/pipeline for what
// established connections see then.
type Daemons struct {
	RunDir string // sockets, pid files, saved flows (default DefaultRunDir)
	DBDir  string // conf.db (default /etc/openvswitch)
	LogDir string // ovsdb-server.log (default /var/log/openvswitch)
	Schema string // default /usr/share/openvswitch/vswitch.ovsschema
	// SystemID names the node to OVS tooling (external_ids:system-id and hostname).
	SystemID string
	// OtherConfig are "key=value" settings of Open_vSwitch other_config,
	// set before ovs-vswitchd starts (e.g. userspace-tso-enable=true).
	OtherConfig []string
	// FlowLock is the lock file every writer of flows holds while it
	// writes (LockFile): flows are restored under it, and only onto an
	// empty table, so a restore never overwrites a newer table.
	FlowLock string
	// VswitchdArgs are passed to ovs-vswitchd after the database socket.
	VswitchdArgs []string
	// MaxRestarts of one daemon within a minute before Run gives up and
	// returns an error (default 5): then the container restarts.
	MaxRestarts int
	Log         logr.Logger
}

// SavedFlowsFile is where a bridge's flow writer keeps a copy of the table
// it installed (OFCtl.Save), in ovs-ofctl add-flows syntax, for Daemons to
// restore when ovs-vswitchd restarts.
func SavedFlowsFile(runDir, bridge string) string { return filepath.Join(runDir, bridge+".flows") }

const flowRestoreWait = "flow-restore-wait"

func (d *Daemons) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.RunDir, DefaultRunDir)
	def(&d.DBDir, "/etc/openvswitch")
	def(&d.LogDir, "/var/log/openvswitch")
	def(&d.Schema, "/usr/share/openvswitch/vswitch.ovsschema")
	if d.MaxRestarts == 0 {
		d.MaxRestarts = 5
	}
}

func (d *Daemons) db() string             { return filepath.Join(d.DBDir, "conf.db") }
func (d *Daemons) dbLock() string         { return filepath.Join(d.DBDir, ".conf.db.~lock~") }
func (d *Daemons) vswitchdPid() string    { return filepath.Join(d.RunDir, "ovs-vswitchd.pid") }
func (d *Daemons) ovsdbServerPid() string { return filepath.Join(d.RunDir, "ovsdb-server.pid") }

// daemon is one running daemon process.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (d *daemon) stop(grace time.Duration) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// Run starts both daemons and keeps them running until ctx ends.
func (d *Daemons) Run(ctx context.Context) error {
	d.defaults()
	for _, dir := range []string{d.RunDir, d.DBDir, d.LogDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	snapshot, err := d.waitPredecessor(ctx)
	if err != nil {
		return err
	}
	if err := d.ensureDB(ctx); err != nil {
		return err
	}
	db, err := d.startOVSDB(ctx)
	if err != nil {
		return err
	}
	var vs *daemon
	defer func() {
		// Whatever runs Open vSwitch next, of whichever version, must not
		// find the switch told to wait for a restore nobody will do.
		d.clearRestoreWait(context.Background())
		// The database first: the switch forwards without it, and a
		// successor waits for both, so the node's outage starts only when
		// the switch stops.
		db.stop(5 * time.Second) // the one running then
		if vs != nil {
			vs.stop(10 * time.Second)
		}
	}()
	// The node's identity, other_config and flow-restore-wait in one
	// transaction.
	if err := d.configure(ctx, flowRestoreWait+"=true"); err != nil {
		return err
	}
	if vs, err = d.startVswitchd(ctx, snapshot, true); err != nil {
		return err
	}
	restarts := map[string][]time.Time{}
	budget := func(name string) error {
		now := time.Now()
		recent := restarts[name][:0]
		for _, t := range restarts[name] {
			if now.Sub(t) < time.Minute {
				recent = append(recent, t)
			}
		}
		restarts[name] = append(recent, now)
		if len(restarts[name]) > d.MaxRestarts {
			return fmt.Errorf("%s exited %d times within a minute; giving up (the container restarts)", name, len(restarts[name]))
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			d.Log.Info("stopping Open vSwitch")
			return nil
		case <-db.done:
			d.Log.Info("ovsdb-server exited; starting it again (ovs-vswitchd keeps forwarding meanwhile)", "error", errString(db.err))
			if err := budget(db.name); err != nil {
				return err
			}
			if db, err = d.startOVSDB(ctx); err != nil {
				return err
			}
		case <-vs.done:
			d.Log.Info("ovs-vswitchd exited; starting it again with the saved flows", "error", errString(vs.err))
			if err := budget(vs.name); err != nil {
				return err
			}
			if vs, err = d.startVswitchd(ctx, nil, false); err != nil {
				return err
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitPredecessor waits while another ovsdb-server holds the database or
// another ovs-vswitchd its pid file, copying that switch's flows every
// half second meanwhile; it returns the last copy, by bridge.
func (d *Daemons) waitPredecessor(ctx context.Context) (map[string]string, error) {
	snapshot := map[string]string{}
	logged := false
	var lastCopy time.Time
	for {
		dbHeld, vsHeld := fileLocked(d.dbLock()), fileLocked(d.vswitchdPid())
		if !dbHeld && !vsHeld {
			if logged {
				d.Log.Info("the previous Open vSwitch has stopped; taking over", "bridgesCopied", len(snapshot))
			}
			return snapshot, nil
		}
		if !logged {
			d.Log.Info("another Open vSwitch runs on this node (a surge upgrade's old pod?): waiting for it to stop, copying its flows meanwhile",
				"databaseHeld", dbHeld, "switchHeld", vsHeld)
			logged = true
		}
		if vsHeld && time.Since(lastCopy) >= 500*time.Millisecond {
			lastCopy = time.Now()
			if bridges, err := d.vsctl(ctx, "--timeout=2", "list-br"); err == nil {
				for _, br := range strings.Fields(bridges) {
					if flows, err := d.dumpFlows(ctx, br); err == nil && flows != "" {
						snapshot[br] = flows
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // two lock tests; the node forwards nothing until this notices
		}
	}
}

// ensureDB creates the database, or converts it to the schema of this
// image's Open vSwitch (an upgrade may bring a newer one).
func (d *Daemons) ensureDB(ctx context.Context) error {
	if fi, err := os.Stat(d.db()); err != nil || fi.Size() == 0 {
		_, err := d.run(ctx, "ovsdb-tool", "create", d.db(), d.Schema)
		return err
	}
	out, err := d.run(ctx, "ovsdb-tool", "needs-conversion", d.db(), d.Schema)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "yes" {
		d.Log.Info("converting the Open vSwitch database to this image's schema", "db", d.db())
		_, err = d.run(ctx, "ovsdb-tool", "convert", d.db(), d.Schema)
	}
	return err
}

func (d *Daemons) start(name string, args ...string) (*daemon, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = d.env()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// startOVSDB starts ovsdb-server and waits until it answers.
func (d *Daemons) startOVSDB(ctx context.Context) (*daemon, error) {
	p, err := d.start("ovsdb-server", d.db(), "--remote=punix:"+DBSocket(d.RunDir),
		"--remote=db:Open_vSwitch,Open_vSwitch,manager_options", "--pidfile="+d.ovsdbServerPid(),
		"--log-file="+filepath.Join(d.LogDir, "ovsdb-server.log"), "-vconsole:warn")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.vsctl(ctx, "--no-wait", "--timeout=2", "get", "Open_vSwitch", ".", "_uuid"); err == nil {
			return p, nil
		} else if _, err := d.vsctl(ctx, "--no-wait", "--timeout=2", "init"); err == nil {
			return p, nil // a new database: init made its root row
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("ovsdb-server exited at start: %v (see %s)", p.err, filepath.Join(d.LogDir, "ovsdb-server.log"))
		case <-ctx.Done():
			p.stop(time.Second)
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop(time.Second)
			return nil, fmt.Errorf("ovsdb-server did not answer on %s within 30 s", DBSocket(d.RunDir))
		}
	}
}

// configure initialises the root row and sets the node's identity and
// other_config (and extra, "key=value" of other_config), in one
// transaction (a handover waits for it).
func (d *Daemons) configure(ctx context.Context, extra ...string) error {
	args := []string{"--no-wait", "init"}
	if d.SystemID != "" {
		args = append(args, "--", "set", "Open_vSwitch", ".", "external_ids:system-id="+d.SystemID, "external_ids:hostname="+d.SystemID)
	}
	for _, kv := range append(append([]string{}, d.OtherConfig...), extra...) {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("other_config %q: want key=value", kv)
		}
		args = append(args, "--", "set", "Open_vSwitch", ".", "other_config:"+kv)
	}
	_, err := d.vsctl(ctx, args...)
	return err
}

// startVswitchd starts ovs-vswitchd held by flow-restore-wait (set here
// unless waitSet says configure did), restores each bridge's flows (from
// snapshot, else its saved file) and lets it forward.
func (d *Daemons) startVswitchd(ctx context.Context, snapshot map[string]string, waitSet bool) (*daemon, error) {
	start := time.Now()
	if !waitSet {
		if _, err := d.vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "other_config:"+flowRestoreWait+"=true"); err != nil {
			return nil, err
		}
	}
	p, err := d.start("ovs-vswitchd", append([]string{"unix:" + DBSocket(d.RunDir), "--pidfile=" + d.vswitchdPid()}, d.VswitchdArgs...)...)
	if err != nil {
		return nil, err
	}
	bridges, err := d.vsctl(ctx, "--no-wait", "list-br")
	if err != nil {
		p.stop(time.Second)
		return nil, err
	}
	for _, br := range strings.Fields(bridges) {
		flows, from := snapshot[br], "the previous switch"
		if flows == "" {
			b, err := os.ReadFile(SavedFlowsFile(d.RunDir, br))
			if err != nil {
				continue // nothing saved (a new node, or after a reboot): the flow writer installs them
			}
			flows, from = string(b), SavedFlowsFile(d.RunDir, br)
		}
		n, err := d.restore(ctx, p, br, flows)
		switch {
		case err != nil:
			// The table stays empty: nothing forwards on br until its writer installs flows.
			d.Log.Error(err, "flows not restored; the bridge forwards once its flow writer installs them", "bridge", br)
		case n > 0:
			d.Log.Info("flows restored", "bridge", br, "flows", n, "from", from)
		}
	}
	d.clearRestoreWait(ctx)
	d.Log.Info("ovs-vswitchd forwarding", "took", time.Since(start).Round(time.Millisecond).String())
	return p, nil
}

// restore installs flows on br if its table is still empty, under the flow
// writers' lock; it returns how many it installed (0: the table had flows).
func (d *Daemons) restore(ctx context.Context, p *daemon, br, flows string) (int, error) {
	of := OFCtl{RunDir: d.RunDir, Bridge: br}
	// Wait for the bridge's OpenFlow socket.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := of.run(ctx, "", "dump-flows", of.target(), "table=255")
		if err == nil {
			break
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("ovs-vswitchd exited: %v", p.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bridge %s has no OpenFlow socket after 20 s: %w", br, err)
		}
	}
	if d.FlowLock != "" {
		unlock, err := LockFile(d.FlowLock)
		if err != nil {
			return 0, err
		}
		defer unlock()
	}
	current, err := of.Dump(ctx)
	if err != nil {
		return 0, err
	}
	if len(current) > 0 {
		return 0, nil // its writer was first: that table is newer
	}
	lines := 0
	for _, l := range strings.Split(flows, "\n") {
		if strings.TrimSpace(l) != "" {
			lines++
		}
	}
	if _, err := of.run(ctx, flows, "--bundle", "add-flows", of.target(), "-"); err != nil {
		return 0, err
	}
	return lines, nil
}

func (d *Daemons) clearRestoreWait(ctx context.Context) {
	if _, err := d.vsctl(ctx, "--no-wait", "--timeout=5", "remove", "Open_vSwitch", ".", "other_config", flowRestoreWait); err != nil {
		d.Log.Error(err, "could not clear other_config:flow-restore-wait")
	}
}

// dumpFlows returns br's flows in add-flows syntax.
func (d *Daemons) dumpFlows(ctx context.Context, br string) (string, error) {
	of := OFCtl{RunDir: d.RunDir, Bridge: br}
	flows, err := of.DumpRestorable(ctx)
	if err != nil {
		return "", err
	}
	return strings.Join(flows, "\n"), nil
}

func (d *Daemons) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+d.RunDir, "OVS_DBDIR="+d.DBDir, "OVS_LOGDIR="+d.LogDir)
}

func (d *Daemons) vsctl(ctx context.Context, args ...string) (string, error) {
	return d.run(ctx, "ovs-vsctl", append([]string{"--db=unix:" + DBSocket(d.RunDir)}, args...)...)
}

func (d *Daemons) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = d.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// savedFlowsMu serialises writers of one process to saved flow files.
var savedFlowsMu sync.Mutex

// writeSavedFlows stores flows in path, atomically (write, then rename).
func writeSavedFlows(path string, flows []string) error {
	savedFlowsMu.Lock()
	defer savedFlowsMu.Unlock()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(flows, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
