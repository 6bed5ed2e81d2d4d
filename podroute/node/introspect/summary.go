package introspect

import (
	"reflect"
	"strings"
	"time"
)

// Summary is what each agent publishes about its node to the API server (a
// T1RouteAgentInfo object named after the node): small, and free of
// anything that changes with traffic (no packet counters), so it changes
// only when the datapath does.
type Summary struct {
	Health            Health         `json:"health"`
	Message           string         `json:"message,omitempty"`
	Bridge            string         `json:"bridge,omitempty"`
	DatapathType      string         `json:"datapathType,omitempty"`
	OVSVersion        string         `json:"ovsVersion,omitempty"`
	AgentVersion      string         `json:"agentVersion,omitempty"`
	PodCIDRs          []string       `json:"podCIDRs,omitempty"`
	LocalPods         int            `json:"localPods"`
	Flows             int            `json:"flows"`
	FlowsPerTable     []SummaryTable `json:"flowsPerTable,omitempty"`
	PolicyEnforcement bool           `json:"policyEnforcement"`
	NetworkPolicies   int            `json:"networkPolicies"`
	FlowSyncFailures  uint64         `json:"flowSyncFailures"`
	// LastFlowSync and LastFlowSyncDuration are as of the publication: they
	// alone never cause one (the agent resyncs every 30 s).
	LastFlowSync         *time.Time `json:"lastFlowSync,omitempty"`
	LastFlowSyncDuration Seconds    `json:"lastFlowSyncDuration"`
	// Updated is when the agent published; it does so at least every
	// Heartbeat, so a summary older than twice that is stale.
	Updated   time.Time `json:"updated"`
	Heartbeat Seconds   `json:"heartbeatSeconds"`
}

// SummaryTable is one table's flow count.
type SummaryTable struct {
	Table int    `json:"table"`
	Name  string `json:"name,omitempty"`
	Flows int    `json:"flows"`
}

// SummaryOf reduces an agent's state to what it publishes.
func SummaryOf(info AgentInfo) Summary {
	s := Summary{
		Health: info.Health, Message: strings.Join(info.Errors, "; "), Bridge: info.Bridge, DatapathType: info.DatapathType,
		OVSVersion: info.OVSVersion, AgentVersion: info.AgentVersion, PodCIDRs: info.PodCIDRs, LocalPods: info.PodCount,
		Flows: info.Flows, PolicyEnforcement: info.PolicyEnforcement, NetworkPolicies: info.PolicyCount,
		FlowSyncFailures: info.FlowSyncFailures, LastFlowSync: info.LastFlowSync, LastFlowSyncDuration: info.LastFlowSyncDuration,
	}
	if len(s.Message) > 1024 { // a status object, not a log
		s.Message = s.Message[:1021] + "..."
	}
	for _, t := range info.FlowsPerTable {
		s.FlowsPerTable = append(s.FlowsPerTable, SummaryTable{Table: t.Table, Name: t.Name, Flows: t.Flows})
	}
	return s
}

// SameState reports whether two summaries say the same about the datapath:
// times (publication, last sync and its duration) are left out.
func SameState(a, b Summary) bool {
	a.LastFlowSync, b.LastFlowSync = nil, nil
	a.LastFlowSyncDuration, b.LastFlowSyncDuration = 0, 0
	a.Updated, b.Updated = time.Time{}, time.Time{}
	a.Heartbeat, b.Heartbeat = 0, 0
	return reflect.DeepEqual(a, b)
}

// Stale reports whether a published summary is too old to trust: its agent
// missed two heartbeats (plus a minute of slack for clocks and API delays).
func (s Summary) Stale(now time.Time) bool {
	hb := s.Heartbeat.Duration()
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	return now.Sub(s.Updated) > 2*hb+time.Minute
}

// InfoOf turns a published summary back into an AgentInfo for printing;
// a stale one's health is Unknown.
func InfoOf(node string, s Summary, now time.Time) AgentInfo {
	in := AgentInfo{
		AgentStatus: AgentStatus{Node: node, Ready: s.Health == Healthy || s.Health == Degraded, AgentVersion: s.AgentVersion,
			Bridge: s.Bridge, DatapathType: s.DatapathType, OVSVersion: s.OVSVersion, PodCIDRs: s.PodCIDRs,
			LastFlowSync: s.LastFlowSync, LastFlowSyncDuration: s.LastFlowSyncDuration, FlowSyncFailures: s.FlowSyncFailures},
		Health: s.Health, Flows: s.Flows, PodCount: s.LocalPods, PolicyEnforcement: s.PolicyEnforcement,
		PolicyCount: s.NetworkPolicies,
	}
	updated := s.Updated
	in.Published = &updated
	if s.Message != "" {
		in.Errors = []string{s.Message}
	}
	if s.Stale(now) {
		in.Health = Unknown
		in.Errors = append([]string{"no summary from the agent since " + s.Updated.UTC().Format(time.RFC3339) + ": is it running?"}, in.Errors...)
	}
	for _, t := range s.FlowsPerTable {
		in.FlowsPerTable = append(in.FlowsPerTable, TableFlows{Table: t.Table, Name: t.Name, Flows: t.Flows})
	}
	return in
}
