package introspect

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PodInterface is one pod attached to a node's bridge, as OVSDB records it
// (the CNI plugin writes the pod's identity into the Interface's
// external_ids when it attaches the pod).
type PodInterface struct {
	Node      string `json:"node,omitempty"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Interface is the OVS port (the host side of the pod's veth).
	Interface string `json:"interface"`
	// ContainerInterface is the interface's name inside the pod (eth0).
	ContainerInterface string   `json:"containerInterface,omitempty"`
	IPs                []string `json:"ips"`
	MAC                string   `json:"mac"`
	PortUUID           string   `json:"portUUID"`
	// OFPort is the OpenFlow port number; 0 while ovs-vswitchd has not built the port.
	OFPort      int    `json:"ofport"`
	ContainerID string `json:"containerID"`
	// Error is what ovs-vswitchd recorded when it could not build the port.
	Error string `json:"error,omitempty"`
}

// Key is "namespace/pod".
func (p PodInterface) Key() string { return p.Namespace + "/" + p.Pod }

// Cookie is an OpenFlow cookie. It is written as a hexadecimal string, as
// ovs-ofctl shows it: a uint64 does not survive JSON readers that use floats.
type Cookie uint64

// MarshalText writes 0x-prefixed hexadecimal.
func (c Cookie) MarshalText() ([]byte, error) {
	return []byte("0x" + strconv.FormatUint(uint64(c), 16)), nil
}

// UnmarshalText reads 0x-prefixed hexadecimal or decimal.
func (c *Cookie) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return fmt.Errorf("cookie %q: %w", b, err)
	}
	*c = Cookie(v)
	return nil
}

// Flow is one OpenFlow flow with its counters, as installed on the bridge.
type Flow struct {
	Node      string `json:"node,omitempty"`
	Table     int    `json:"table"`
	TableName string `json:"tableName,omitempty"`
	Priority  int    `json:"priority"`
	Cookie    Cookie `json:"cookie"`
	// Match and Actions are in ovs-ofctl syntax, as dump-flows shows them
	// (Match without the priority).
	Match   string `json:"match"`
	Actions string `json:"actions"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Duration is how long the flow has been installed.
	Duration    Seconds `json:"duration"`
	IdleTimeout int     `json:"idleTimeout,omitempty"`
	HardTimeout int     `json:"hardTimeout,omitempty"`
	Flags       string  `json:"flags,omitempty"` // send_flow_rem, reset_counts, ...
}

// Seconds is a duration written as a number of seconds (as ovs-ofctl
// writes durations), with millisecond precision.
type Seconds float64

// Duration converts to time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// String is the flow in ovs-ofctl's add-flow syntax (without counters).
func (f Flow) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%d,priority=%d", f.Table, f.Priority)
	if f.Cookie != 0 {
		fmt.Fprintf(&b, ",cookie=%#x", uint64(f.Cookie))
	}
	if f.Match != "" {
		b.WriteString("," + f.Match)
	}
	b.WriteString(" actions=" + f.Actions)
	return b.String()
}

// TableFlows is how many flows one table holds, and the packets they matched.
type TableFlows struct {
	Table   int    `json:"table"`
	Name    string `json:"name,omitempty"`
	Flows   int    `json:"flows"`
	Packets uint64 `json:"packets"`
}

// Health is an agent's state in one word.
type Health string

// Health values.
const (
	// Healthy: the datapath is set up, the last flow sync succeeded, OVSDB is connected.
	Healthy Health = "Healthy"
	// Degraded: pods forward, but something needs attention (see Errors).
	Degraded Health = "Degraded"
	// NotReady: the datapath is not set up yet (no podCIDR, no bridge, no first sync).
	NotReady Health = "NotReady"
	// Unknown: the published summary is older than its heartbeat allows; the agent may be down.
	Unknown Health = "Unknown"
)

// AgentStatus is what the agent knows of itself; AgentInfo adds what the
// bridge shows.
type AgentStatus struct {
	Node           string   `json:"node"`
	Ready          bool     `json:"ready"`
	AgentVersion   string   `json:"agentVersion,omitempty"`
	Bridge         string   `json:"bridge"`
	DatapathType   string   `json:"datapathType"`
	OVSVersion     string   `json:"ovsVersion,omitempty"`
	PodCIDRs       []string `json:"podCIDRs"`
	GatewayPort    string   `json:"gatewayPort,omitempty"`
	OVSDBConnected bool     `json:"ovsdbConnected"`
	// LastFlowSync is when the flow table was last rebuilt successfully.
	LastFlowSync         *time.Time `json:"lastFlowSync,omitempty"`
	LastFlowSyncDuration Seconds    `json:"lastFlowSyncDuration"`
	FlowSyncFailures     uint64     `json:"flowSyncFailures"`
	// Errors are current problems, one sentence each (empty when healthy).
	Errors []string `json:"errors,omitempty"`
}

// AgentInfo is one node agent's state: `t1route get agentinfo`.
type AgentInfo struct {
	AgentStatus
	Health        Health       `json:"health"`
	Flows         int          `json:"flows"`
	FlowsPerTable []TableFlows `json:"flowsPerTable"`
	// LocalPods are the attached pods (namespace/name, sorted); PodCount
	// is their number (the only figure a published summary holds).
	LocalPods []string `json:"localPods,omitempty"`
	PodCount  int      `json:"podCount"`
	// NetworkPolicies are the policies applied on this node ("namespace/name");
	// PolicyEnforcement says whether this version enforces any.
	PolicyEnforcement bool     `json:"policyEnforcement"`
	NetworkPolicies   []string `json:"networkPolicies,omitempty"`
	PolicyCount       int      `json:"policyCount"`
	// Published is set when this comes from the summary the agent published
	// to the API server (and says when), not from the agent itself.
	Published *time.Time `json:"published,omitempty"`
}

// HealthOf derives the one-word health from the agent's status.
func HealthOf(s AgentStatus) Health {
	switch {
	case !s.Ready:
		return NotReady
	case len(s.Errors) > 0 || !s.OVSDBConnected:
		return Degraded
	}
	return Healthy
}

// NetworkPolicy is one policy as a node enforces it.
type NetworkPolicy struct {
	Node      string `json:"node,omitempty"`
	Namespace string `json:"namespace,omitempty"` // empty for cluster-scoped policies
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	// AppliedTo are the local pods the policy selects ("namespace/name").
	AppliedTo []string `json:"appliedTo"`
	Rules     int      `json:"rules"`
	Flows     int      `json:"flows"`
}

// PolicyList is `t1route get networkpolicy` for one node.
type PolicyList struct {
	Node string `json:"node"`
	// Enforced is false when this version of t1route enforces no NetworkPolicy.
	Enforced bool            `json:"enforced"`
	Items    []NetworkPolicy `json:"items"`
}

// NotEnforcedMessage is what every command says about policies while the
// datapath enforces none.
const NotEnforcedMessage = "this version of t1route enforces no NetworkPolicy: no policy is applied, and all pod traffic the routes allow is forwarded"
