package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"

	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/ovs"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// syncState is what the agent knows of its last flow syncs, for
// introspection.
type syncState struct {
	podCIDRs   []string
	ovsVersion string
	lastSync   time.Time
	lastDur    time.Duration
	failures   uint64
	lastErr    string   // of the last sync, "" if it succeeded
	badPorts   []string // pod ports whose external_ids could not be read
	guardErr   string   // why the management guard is not kept in the kernel, "" if it is
}

func (a *Agent) setGuardError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.guardErr = ""
	if err != nil {
		a.st.guardErr = "management guard not kept in the kernel: " + err.Error()
	}
}

func (a *Agent) setPodCIDRs(cidrs []netip.Prefix) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.podCIDRs = nil
	for _, c := range cidrs {
		a.st.podCIDRs = append(a.st.podCIDRs, c.String())
	}
}

// recordSync keeps a sync's outcome and the running OVS's version, and
// signals introspection (coalesced).
func (a *Agent) recordSync(ctx context.Context, table ovs.OFCtl, start time.Time, res pipeline.SyncResult, err error) {
	version := ""
	if err == nil {
		if desc, derr := table.Desc(ctx); derr == nil {
			version, _ = introspect.ParseOVSVersion(desc)
		}
	}
	a.mu.Lock()
	if err != nil {
		a.st.failures++
		a.st.lastErr = "flow sync failed: " + err.Error()
	} else {
		a.st.lastSync, a.st.lastDur, a.st.lastErr, a.st.badPorts = time.Now(), time.Since(start), "", res.BadPorts
		if version != "" {
			a.st.ovsVersion = version
		}
	}
	a.mu.Unlock()
	select {
	case a.synced <- struct{}{}:
	default:
	}
}

// Status implements introspect.Datapath.
func (a *Agent) Status(context.Context) introspect.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	db := a.db.Load()
	s := introspect.AgentStatus{Node: a.cfg.NodeName, Ready: a.ready.Load(), Bridge: a.cfg.Bridge, DatapathType: a.cfg.DatapathType,
		OVSVersion: a.st.ovsVersion, PodCIDRs: append([]string{}, a.st.podCIDRs...), GatewayPort: a.cfg.GatewayPort,
		OVSDBConnected: db != nil && db.Connected(), LastFlowSyncDuration: introspect.Seconds(a.st.lastDur.Seconds()),
		FlowSyncFailures: a.st.failures}
	if !a.st.lastSync.IsZero() {
		t := a.st.lastSync.UTC()
		s.LastFlowSync = &t
	}
	if a.st.lastErr != "" {
		s.Errors = append(s.Errors, a.st.lastErr)
	}
	if a.st.guardErr != "" {
		s.Errors = append(s.Errors, a.st.guardErr)
	}
	if len(a.st.badPorts) > 0 {
		s.Errors = append(s.Errors, "pod ports with unreadable external_ids get no flows: "+strings.Join(a.st.badPorts, ", "))
	}
	if db != nil && !db.Connected() {
		s.Errors = append(s.Errors, "not connected to ovsdb-server: OVS restarts go unrepaired until it is back")
	}
	return s
}

// PodInterfaces implements introspect.Datapath: the pods the CNI plugin
// attached, from OVSDB.
func (a *Agent) PodInterfaces(ctx context.Context) ([]introspect.PodInterface, error) {
	db := a.db.Load()
	if db == nil {
		return nil, fmt.Errorf("the agent has not connected to OVSDB yet")
	}
	ports, err := db.Ports(ctx, a.cfg.Bridge)
	if err != nil {
		return nil, err
	}
	var out []introspect.PodInterface
	for _, p := range ports {
		ids := p.ExternalIDs
		if ids[pipeline.KeyContainerID] == "" {
			continue
		}
		pi := introspect.PodInterface{Namespace: ids[pipeline.KeyPodNamespace], Pod: ids[pipeline.KeyPodName], Interface: p.Name,
			ContainerInterface: ids[pipeline.KeyIfName], MAC: strings.ToLower(ids[pipeline.KeyMAC]), PortUUID: p.UUID, OFPort: p.OFPort,
			ContainerID: ids[pipeline.KeyContainerID], Error: p.Error, IPs: []string{}}
		for _, ip := range strings.Split(ids[pipeline.KeyIPs], ",") {
			if ip = strings.TrimSpace(ip); ip != "" {
				pi.IPs = append(pi.IPs, ip)
			}
		}
		out = append(out, pi)
	}
	return out, nil
}

// DumpFlows implements introspect.Datapath.
func (a *Agent) DumpFlows(ctx context.Context) (string, error) {
	return ovs.OFCtl{RunDir: a.cfg.RunDir, Bridge: a.cfg.Bridge}.DumpStats(ctx)
}

// Tables are the pipeline's tables, as introspection names them.
func Tables() introspect.Tables {
	var out introspect.Tables
	for _, t := range pipeline.Tables() {
		out = append(out, introspect.Table{ID: t.ID, Name: t.Name, What: t.What})
	}
	return out
}

// IntrospectionConfig configures the agent's introspection.
type IntrospectionConfig struct {
	Socket string // where `t1route get` asks (inside the agent's container)
	// Dynamic publishes the node's T1RouteAgentInfo; nil: not published.
	Dynamic                dynamic.Interface
	MinInterval, Heartbeat time.Duration // of publication (defaults: introspect's)
	Version                string        // the agent's
}

// ServeIntrospection serves `t1route get` on the socket and publishes the
// node's summary until ctx ends. Neither changes the datapath; their
// failures are logged, never fatal to forwarding.
func (a *Agent) ServeIntrospection(ctx context.Context, cfg IntrospectionConfig) error {
	dp := versioned{a, cfg.Version}
	var policies introspect.Policies
	if a.policy != nil {
		policies = policySource{a}
	}
	srv := introspect.NewServer(dp, Tables(), policies)
	ln, err := introspect.Listen(cfg.Socket)
	if err != nil {
		return err
	}
	a.log.Info("serving introspection", zap.String("socket", cfg.Socket))
	if cfg.Dynamic != nil {
		p := (&introspect.Publisher{Node: a.cfg.NodeName, Store: &introspect.KubeStore{Dynamic: cfg.Dynamic, Kube: a.kube},
			Collect:     func(ctx context.Context) introspect.Summary { return introspect.SummaryOf(srv.Info(ctx)) },
			MinInterval: cfg.MinInterval, Heartbeat: cfg.Heartbeat, Log: a.log.Named("summary")}).Init()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-a.synced:
					p.Notify()
				}
			}
		}()
		go p.Run(ctx)
	}
	return introspect.Serve(ctx, ln, srv.Handler())
}

// versioned adds the agent's version to its status.
type versioned struct {
	*Agent
	version string
}

func (v versioned) Status(ctx context.Context) introspect.AgentStatus {
	s := v.Agent.Status(ctx)
	s.AgentVersion = v.version
	return s
}
