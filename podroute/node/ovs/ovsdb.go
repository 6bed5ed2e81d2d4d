package ovs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// The OVSDB rows t1route reads and writes, reduced to the columns it uses
// (libovsdb maps a struct onto a subset of a table's columns).

type ovsRoot struct {
	UUID        string            `ovsdb:"_uuid"`
	Bridges     []string          `ovsdb:"bridges"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type ovsBridge struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	Ports        []string          `ovsdb:"ports"`
	DatapathType string            `ovsdb:"datapath_type"`
	FailMode     *string           `ovsdb:"fail_mode"`
	Protocols    []string          `ovsdb:"protocols"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

type ovsPort struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type ovsInterface struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Type        string            `ovsdb:"type"`
	OFPort      *int              `ovsdb:"ofport"`
	MAC         *string           `ovsdb:"mac"` // requested
	MACInUse    *string           `ovsdb:"mac_in_use"`
	Error       *string           `ovsdb:"error"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// Port is one port of the bridge as OVSDB knows it.
type Port struct {
	Name string
	UUID string // the Port row's
	// OFPort is the OpenFlow port number, 0 until ovs-vswitchd has built the port.
	OFPort int
	// MAC is the interface's MAC as OVS sees it ("" if not known yet).
	MAC string
	// Error is what ovs-vswitchd reported when it could not build the port.
	Error       string
	ExternalIDs map[string]string
}

// OVSDB is a connection to one Open vSwitch database (libovsdb with a
// monitored cache of the four tables t1route uses).
type OVSDB struct {
	c      client.Client
	events chan struct{}
}

// DefaultRunDir is where Open vSwitch keeps its sockets on a node.
const DefaultRunDir = "/var/run/openvswitch"

// DBSocket is the OVSDB socket under an OVS run directory.
func DBSocket(runDir string) string { return filepath.Join(runDir, "db.sock") }

// DialOVSDB connects to the ovsdb-server listening on runDir/db.sock, for
// a short-lived user (a CNI invocation): a lost connection is an error.
func DialOVSDB(ctx context.Context, runDir string, log logr.Logger) (*OVSDB, error) {
	return dialOVSDB(ctx, runDir, log, false)
}

// DialOVSDBPersistent connects like DialOVSDB and, when ovsdb-server goes
// away (an OVS restart or upgrade), reconnects and re-establishes the
// monitor; calls wait for the connection meanwhile. For the agent.
func DialOVSDBPersistent(ctx context.Context, runDir string, log logr.Logger) (*OVSDB, error) {
	return dialOVSDB(ctx, runDir, log, true)
}

// Connected reports whether the connection to ovsdb-server is up.
func (db *OVSDB) Connected() bool { return db.c.Connected() }

func dialOVSDB(ctx context.Context, runDir string, log logr.Logger, reconnect bool) (*OVSDB, error) {
	dbModel, err := model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		"Open_vSwitch": &ovsRoot{}, "Bridge": &ovsBridge{}, "Port": &ovsPort{}, "Interface": &ovsInterface{},
	})
	if err != nil {
		return nil, err
	}
	l := log.WithName("ovsdb").V(2) // libovsdb is verbose; keep it out of info logs
	opts := []client.Option{client.WithEndpoint("unix:" + DBSocket(runDir)), client.WithLogger(&l)}
	if reconnect {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0 // forever
		opts = append(opts, client.WithReconnect(5*time.Second, b))
	}
	c, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s (is ovsdb-server running?): %w", DBSocket(runDir), err)
	}
	db := &OVSDB{c: c, events: make(chan struct{}, 1)}
	notify := func() {
		select {
		case db.events <- struct{}{}:
		default:
		}
	}
	// Flows depend on ports and interfaces only; the root row changes with
	// every Barrier, which must not wake the agent into another sync.
	flowRelevant := func(table string) bool { return table == "Port" || table == "Interface" }
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, _ model.Model) {
			if flowRelevant(table) {
				notify()
			}
		},
		UpdateFunc: func(table string, _, _ model.Model) {
			if flowRelevant(table) {
				notify()
			}
		},
		DeleteFunc: func(table string, _ model.Model) {
			if flowRelevant(table) {
				notify()
			}
		},
	})
	// Monitor exactly the modelled columns: the cache cannot hold others.
	root, br, port, iface := &ovsRoot{}, &ovsBridge{}, &ovsPort{}, &ovsInterface{}
	if _, err := c.Monitor(ctx, c.NewMonitor(
		client.WithTable(root, &root.Bridges, &root.ExternalIDs),
		client.WithTable(br, &br.Name, &br.Ports, &br.DatapathType, &br.FailMode, &br.Protocols, &br.ExternalIDs),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.OFPort, &iface.MAC, &iface.MACInUse, &iface.Error, &iface.ExternalIDs),
	)); err != nil {
		c.Disconnect()
		return nil, fmt.Errorf("monitor OVSDB: %w", err)
	}
	return db, nil
}

// Close disconnects.
func (db *OVSDB) Close() { db.c.Disconnect() }

// Changes signals (coalesced) that a monitored row changed.
func (db *OVSDB) Changes() <-chan struct{} { return db.events }

func (db *OVSDB) transact(ctx context.Context, ops []ovsdb.Operation) error {
	reply, err := db.c.Transact(ctx, ops...)
	if err != nil {
		return err
	}
	_, err = ovsdb.CheckOperationResults(reply, ops)
	return err
}

func (db *OVSDB) bridge(name string) (*ovsBridge, bool) {
	var found []ovsBridge
	_ = db.c.WhereCache(func(b *ovsBridge) bool { return b.Name == name }).List(context.Background(), &found)
	if len(found) == 0 {
		return nil, false
	}
	return &found[0], true
}

// EnsureBridge creates the bridge (OpenFlow 1.3, fail-mode secure so that no
// packet moves before t1route's flows are in) or corrects its datapath type.
// Idempotent.
func (db *OVSDB) EnsureBridge(ctx context.Context, name, datapathType string) error {
	secure := "secure"
	if b, ok := db.bridge(name); ok {
		if b.DatapathType == datapathType && b.FailMode != nil && *b.FailMode == secure &&
			len(b.Protocols) == 1 && b.Protocols[0] == "OpenFlow13" {
			return nil
		}
		b.DatapathType, b.FailMode, b.Protocols = datapathType, &secure, []string{"OpenFlow13"}
		ops, err := db.c.Where(b).Update(b, &b.DatapathType, &b.FailMode, &b.Protocols)
		if err != nil {
			return err
		}
		return db.transact(ctx, ops)
	}
	var roots []ovsRoot
	if err := db.c.List(ctx, &roots); err != nil || len(roots) == 0 {
		return fmt.Errorf("OVSDB has no Open_vSwitch row yet (is ovsdb-server initialised?)")
	}
	br := &ovsBridge{UUID: "newbridge", Name: name, DatapathType: datapathType, FailMode: &secure,
		Protocols: []string{"OpenFlow13"}, ExternalIDs: map[string]string{"t1route-managed": "true"}}
	// A bridge needs its local port like `ovs-vsctl add-br` makes it.
	iface := &ovsInterface{UUID: "newlocaliface", Name: name, Type: "internal"}
	port := &ovsPort{UUID: "newlocalport", Name: name, Interfaces: []string{iface.UUID}}
	br.Ports = []string{port.UUID}
	ops, err := db.c.Create(iface, port, br)
	if err != nil {
		return err
	}
	root := &roots[0]
	mut, err := db.c.Where(root).Mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	if err != nil {
		return err
	}
	return db.transact(ctx, append(ops, mut...))
}

// EnsurePort adds a port with one interface of the given type ("" for a
// system device such as a veth, "internal" for a port OVS creates) and sets
// its interface's external_ids. Idempotent: an existing port keeps its place
// and gets the new external_ids.
func (db *OVSDB) EnsurePort(ctx context.Context, bridge, name, ifType string, externalIDs map[string]string) error {
	if iface, ok := db.iface(name); ok {
		if mapsEqual(iface.ExternalIDs, externalIDs) {
			return nil
		}
		iface.ExternalIDs = externalIDs
		ops, err := db.c.Where(iface).Update(iface, &iface.ExternalIDs)
		if err != nil {
			return err
		}
		return db.transact(ctx, ops)
	}
	br, ok := db.bridge(bridge)
	if !ok {
		return fmt.Errorf("bridge %s does not exist (is the t1route agent running on this node?)", bridge)
	}
	iface := &ovsInterface{UUID: "newiface", Name: name, Type: ifType, ExternalIDs: externalIDs}
	port := &ovsPort{UUID: "newport", Name: name, Interfaces: []string{iface.UUID}}
	ops, err := db.c.Create(iface, port)
	if err != nil {
		return err
	}
	mut, err := db.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{port.UUID}})
	if err != nil {
		return err
	}
	return db.transact(ctx, append(ops, mut...))
}

// PinMAC makes the MAC an interface has now the one it keeps: ovs-vswitchd
// gives an internal port a random MAC each time it creates its device (a
// restart, an upgrade), and flows and neighbours that name the old one
// would stop working until rewritten. Idempotent; no error before the
// interface has a MAC (nothing to pin yet).
func (db *OVSDB) PinMAC(ctx context.Context, name string) error {
	iface, ok := db.iface(name)
	if !ok || iface.MACInUse == nil || *iface.MACInUse == "" || (iface.MAC != nil && *iface.MAC != "") {
		return nil
	}
	mac := *iface.MACInUse
	iface.MAC = &mac
	ops, err := db.c.Where(iface).Update(iface, &iface.MAC)
	if err != nil {
		return err
	}
	return db.transact(ctx, ops)
}

// DeletePort removes a port from the bridge. No error if absent.
func (db *OVSDB) DeletePort(ctx context.Context, bridge, name string) error {
	var ports []ovsPort
	_ = db.c.WhereCache(func(p *ovsPort) bool { return p.Name == name }).List(ctx, &ports)
	br, ok := db.bridge(bridge)
	if len(ports) == 0 || !ok {
		return nil
	}
	// Removing the reference is enough: OVSDB garbage-collects the
	// unreferenced Port and Interface rows.
	mut, err := db.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{ports[0].UUID}})
	if err != nil {
		return err
	}
	return db.transact(ctx, mut)
}

func (db *OVSDB) iface(name string) (*ovsInterface, bool) {
	var found []ovsInterface
	_ = db.c.WhereCache(func(i *ovsInterface) bool { return i.Name == name }).List(context.Background(), &found)
	if len(found) == 0 {
		return nil, false
	}
	return &found[0], true
}

// barrierKey is the Open_vSwitch external_ids key Barrier writes.
const barrierKey = "t1route-barrier"

// Barrier returns once everything committed to OVSDB before it was called
// (by any client: another CNI invocation, the agent) is in this
// connection's cache. It writes a fresh token on the root row (which exists
// from `ovs-vsctl init` on, unlike a bridge another client may have just
// created) and waits for the monitor to show it: ovsdb-server sends updates
// in commit order, so every earlier commit has arrived by then. Without it,
// a CNI invocation could compute the flow table from a cache that lacks a
// port another one just added, and remove that pod's flows.
func (db *OVSDB) Barrier(ctx context.Context) error {
	var roots []ovsRoot
	if err := db.c.List(ctx, &roots); err != nil || len(roots) == 0 {
		return fmt.Errorf("OVSDB has no Open_vSwitch row yet (is ovsdb-server initialised?)")
	}
	root := &roots[0]
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	token := hex.EncodeToString(b)
	ops, err := db.c.Where(root).Mutate(root,
		model.Mutation{Field: &root.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: []string{barrierKey}},
		model.Mutation{Field: &root.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{barrierKey: token}})
	if err != nil {
		return err
	}
	if err := db.transact(ctx, ops); err != nil {
		return fmt.Errorf("OVSDB barrier: %w", err)
	}
	for {
		var now []ovsRoot
		if err := db.c.List(ctx, &now); err == nil && len(now) > 0 && now[0].ExternalIDs[barrierKey] == token {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("OVSDB barrier: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// Ports lists the ports of a bridge with their interfaces' state.
func (db *OVSDB) Ports(ctx context.Context, bridge string) ([]Port, error) {
	br, ok := db.bridge(bridge)
	if !ok {
		return nil, fmt.Errorf("bridge %s does not exist", bridge)
	}
	inBridge := make(map[string]bool, len(br.Ports))
	for _, u := range br.Ports {
		inBridge[u] = true
	}
	var ports []ovsPort
	if err := db.c.WhereCache(func(p *ovsPort) bool { return inBridge[p.UUID] }).List(ctx, &ports); err != nil {
		return nil, err
	}
	out := make([]Port, 0, len(ports))
	for _, p := range ports {
		if len(p.Interfaces) != 1 {
			continue // bonds are not t1route's
		}
		iface := &ovsInterface{UUID: p.Interfaces[0]}
		if err := db.c.Get(ctx, iface); err != nil {
			continue
		}
		port := Port{Name: p.Name, UUID: p.UUID, ExternalIDs: iface.ExternalIDs}
		if iface.OFPort != nil && *iface.OFPort > 0 {
			port.OFPort = *iface.OFPort
		}
		if iface.MACInUse != nil {
			port.MAC = *iface.MACInUse
		}
		if iface.Error != nil {
			port.Error = *iface.Error
		}
		out = append(out, port)
	}
	return out, nil
}

// WaitOFPort waits until ovs-vswitchd has built the port and given it an
// OpenFlow number, or reports the error it recorded.
func (db *OVSDB) WaitOFPort(ctx context.Context, name string) (int, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if iface, ok := db.iface(name); ok {
			if iface.OFPort != nil && *iface.OFPort > 0 {
				return *iface.OFPort, nil
			}
			if iface.Error != nil && *iface.Error != "" {
				return 0, fmt.Errorf("ovs-vswitchd could not add port %s: %s", name, *iface.Error)
			}
		}
		select {
		case <-ctx.Done():
			return 0, errors.Join(fmt.Errorf("port %s has no OpenFlow number yet (is ovs-vswitchd running?)", name), ctx.Err())
		case <-tick.C:
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
