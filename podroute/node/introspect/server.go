package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"
)

// Datapath is what the server reads from the node agent.
type Datapath interface {
	// Status is the agent's view of itself; never blocks on OVS for long.
	Status(ctx context.Context) AgentStatus
	// PodInterfaces lists the pods attached to the bridge, from OVSDB.
	PodInterfaces(ctx context.Context) ([]PodInterface, error)
	// DumpFlows returns the bridge's flows as `ovs-ofctl -O OpenFlow13
	// --no-names dump-flows` prints them, with statistics.
	DumpFlows(ctx context.Context) (string, error)
}

// Policies reports the NetworkPolicies a node enforces. A server without
// one says that no policy is enforced.
type Policies interface {
	// NetworkPolicies lists the policies applied to local pods (namespace "" for all).
	NetworkPolicies(ctx context.Context, namespace string) ([]NetworkPolicy, error)
	// PolicyFlows returns the flows one policy produced, out of all flows.
	PolicyFlows(ctx context.Context, namespace, name string, flows []Flow) ([]Flow, error)
}

// Server answers introspection requests about one node's datapath. It is
// read-only: nothing it serves changes the datapath.
type Server struct {
	dp       Datapath
	tables   Tables
	policies Policies
	timeout  time.Duration
}

// NewServer returns a server over the agent's datapath. tables is the
// pipeline's table list; policies may be nil.
func NewServer(dp Datapath, tables Tables, policies Policies) *Server {
	return &Server{dp: dp, tables: tables, policies: policies, timeout: 30 * time.Second}
}

// API paths (version 1). Query parameters: namespace, pod, table, networkpolicy.
const (
	PathPodInterfaces   = "/v1/podinterfaces"
	PathFlows           = "/v1/ovsflows"
	PathAgentInfo       = "/v1/agentinfo"
	PathNetworkPolicies = "/v1/networkpolicies"
)

// Error reasons, carried in error bodies so that a client on the far side
// of an exec can tell them apart.
const (
	ReasonNotFound    = "NotFound"
	ReasonBadRequest  = "BadRequest"
	ReasonNotEnforced = "NotEnforced"
	ReasonUnavailable = "Unavailable"
)

// Error is an introspection API error: the body of every non-2xx answer.
type Error struct {
	Reason  string `json:"reason"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

func (e *Error) status() int {
	switch e.Reason {
	case ReasonNotFound:
		return http.StatusNotFound
	case ReasonBadRequest, ReasonNotEnforced:
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// IsNotFound reports whether err says a pod (or node) was not found.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == ReasonNotFound
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPodInterfaces, s.handle(func(ctx context.Context, q url.Values) (any, error) {
		return s.PodInterfaces(ctx, q.Get("namespace"), q.Get("pod"))
	}))
	mux.HandleFunc("GET "+PathFlows, s.handle(func(ctx context.Context, q url.Values) (any, error) {
		return s.Flows(ctx, FlowQuery{Namespace: q.Get("namespace"), Pod: q.Get("pod"), Table: q.Get("table"), NetworkPolicy: q.Get("networkpolicy")})
	}))
	mux.HandleFunc("GET "+PathAgentInfo, s.handle(func(ctx context.Context, _ url.Values) (any, error) {
		return s.Info(ctx), nil
	}))
	mux.HandleFunc("GET "+PathNetworkPolicies, s.handle(func(ctx context.Context, q url.Values) (any, error) {
		return s.NetworkPolicies(ctx, q.Get("namespace"))
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, &Error{Reason: ReasonBadRequest, Message: fmt.Sprintf("no such introspection path %s %s: the agent serves GET %s, %s, %s and %s",
			r.Method, r.URL.Path, PathPodInterfaces, PathFlows, PathAgentInfo, PathNetworkPolicies)})
	})
	return mux
}

func (s *Server) handle(fn func(ctx context.Context, q url.Values) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		v, err := fn(ctx, r.URL.Query())
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Reason: ReasonUnavailable, Message: err.Error()}
			}
			writeJSON(w, e.status(), e)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) node(ctx context.Context) string { return s.dp.Status(ctx).Node }

// PodInterfaces lists the pods attached on this node, sorted; namespace ""
// is every namespace. A named pod that is not attached here is NotFound.
func (s *Server) PodInterfaces(ctx context.Context, namespace, pod string) ([]PodInterface, error) {
	all, err := s.dp.PodInterfaces(ctx)
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Message: fmt.Sprintf("node %s: read the bridge's ports from OVSDB: %v", s.node(ctx), err)}
	}
	node := s.node(ctx)
	out := []PodInterface{}
	for _, p := range all {
		if (namespace == "" || p.Namespace == namespace) && (pod == "" || p.Pod == pod) {
			p.Node = node
			out = append(out, p)
		}
	}
	if pod != "" && len(out) == 0 {
		return nil, notAttached(node, namespace, pod)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

func notAttached(node, namespace, pod string) *Error {
	if namespace == "" {
		namespace = "*"
	}
	return &Error{Reason: ReasonNotFound, Message: fmt.Sprintf(
		"pod %s/%s not found on node %s: no interface of the bridge belongs to it (check the pod's name, namespace (-n) and node)", namespace, pod, node)}
}

// FlowQuery selects flows; empty fields select everything.
type FlowQuery struct {
	Namespace, Pod string
	// Table is a number or a name of the pipeline.
	Table         string
	NetworkPolicy string
}

// Flows returns the bridge's flows with counters, sorted by table and
// priority, narrowed by the query (all conditions must hold).
func (s *Server) Flows(ctx context.Context, q FlowQuery) ([]Flow, error) {
	var table *Table
	if q.Table != "" {
		t, err := s.tables.Resolve(q.Table)
		if err != nil {
			return nil, &Error{Reason: ReasonBadRequest, Message: err.Error()}
		}
		table = &t
	}
	if q.NetworkPolicy != "" && s.policies == nil {
		return nil, &Error{Reason: ReasonNotEnforced, Message: fmt.Sprintf("--networkpolicy %s: %s", q.NetworkPolicy, NotEnforcedMessage)}
	}
	var pods []PodInterface
	if q.Pod != "" {
		var err error
		if pods, err = s.PodInterfaces(ctx, q.Namespace, q.Pod); err != nil {
			return nil, err
		}
	}
	flows, err := s.flows(ctx)
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Message: fmt.Sprintf("node %s: %v", s.node(ctx), err)}
	}
	if table != nil {
		flows = TableFlowsOf(flows, table.ID)
	}
	if q.Pod != "" {
		flows = PodFlows(flows, pods...)
	}
	if q.NetworkPolicy != "" {
		if flows, err = s.policies.PolicyFlows(ctx, q.Namespace, q.NetworkPolicy, flows); err != nil {
			return nil, err
		}
	}
	if flows == nil {
		flows = []Flow{}
	}
	return flows, nil
}

// flows dumps and parses every flow of the bridge, named and sorted.
func (s *Server) flows(ctx context.Context) ([]Flow, error) {
	dump, err := s.dp.DumpFlows(ctx)
	if err != nil {
		return nil, fmt.Errorf("dump the flow table: %w", err)
	}
	flows, err := ParseFlows(dump)
	if err != nil {
		return nil, err
	}
	node := s.node(ctx)
	for i := range flows {
		flows[i].Node = node
	}
	NameTables(flows, s.tables)
	SortFlows(flows)
	return flows, nil
}

// Info is the agent's state with what the bridge shows now: flows per
// table (from a fresh dump), local pods, policies. It always answers: what
// cannot be read is reported in Errors, and the health says Degraded.
func (s *Server) Info(ctx context.Context) AgentInfo {
	info := AgentInfo{AgentStatus: s.dp.Status(ctx), LocalPods: []string{}, NetworkPolicies: []string{}}
	info.Errors = append([]string(nil), info.Errors...)
	if flows, err := s.flows(ctx); err != nil {
		info.Errors = append(info.Errors, err.Error())
	} else {
		info.Flows = len(flows)
		info.FlowsPerTable = CountPerTable(flows, s.tables)
	}
	if pods, err := s.dp.PodInterfaces(ctx); err != nil {
		info.Errors = append(info.Errors, "read the bridge's ports from OVSDB: "+err.Error())
	} else {
		for _, p := range pods {
			info.LocalPods = append(info.LocalPods, p.Key())
		}
		sort.Strings(info.LocalPods)
	}
	if s.policies != nil {
		info.PolicyEnforcement = true
		if ps, err := s.policies.NetworkPolicies(ctx, ""); err != nil {
			info.Errors = append(info.Errors, "list applied policies: "+err.Error())
		} else {
			for _, p := range ps {
				info.NetworkPolicies = append(info.NetworkPolicies, p.Namespace+"/"+p.Name)
			}
		}
	}
	info.PodCount, info.PolicyCount = len(info.LocalPods), len(info.NetworkPolicies)
	info.Health = HealthOf(info.AgentStatus)
	return info
}

// NetworkPolicies lists the policies this node enforces (none, and says
// so, when this version enforces no policy).
func (s *Server) NetworkPolicies(ctx context.Context, namespace string) (PolicyList, error) {
	l := PolicyList{Node: s.node(ctx), Items: []NetworkPolicy{}}
	if s.policies == nil {
		return l, nil
	}
	l.Enforced = true
	ps, err := s.policies.NetworkPolicies(ctx, namespace)
	if err != nil {
		return l, err
	}
	for _, p := range ps {
		p.Node = l.Node
		l.Items = append(l.Items, p)
	}
	return l, nil
}
