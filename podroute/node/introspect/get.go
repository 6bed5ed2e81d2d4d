package introspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
)

// Kind is what `t1route get` shows.
type Kind string

// Kinds.
const (
	KindPodInterface  Kind = "podinterface"
	KindOVSFlows      Kind = "ovsflows"
	KindAgentInfo     Kind = "agentinfo"
	KindNetworkPolicy Kind = "networkpolicy"
)

var kindAliases = map[string]Kind{
	"podinterface": KindPodInterface, "podinterfaces": KindPodInterface, "pi": KindPodInterface,
	"ovsflows": KindOVSFlows, "ovsflow": KindOVSFlows, "of": KindOVSFlows,
	"agentinfo": KindAgentInfo, "agentinfos": KindAgentInfo, "ai": KindAgentInfo,
	"networkpolicy": KindNetworkPolicy, "networkpolicies": KindNetworkPolicy, "netpol": KindNetworkPolicy, "np": KindNetworkPolicy,
}

// ParseKind reads a kind or its short name.
func ParseKind(s string) (Kind, error) {
	if k, ok := kindAliases[strings.ToLower(s)]; ok {
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: use podinterface (pi), ovsflows (of), agentinfo (ai) or networkpolicy (netpol)", s)
}

// Query is one `t1route get`.
type Query struct {
	Kind      Kind
	Namespace string // "" for every namespace, except with a pod, where it means "default"
	// Pod is the pod of podinterface POD and ovsflows -p POD.
	Pod           string
	Table         string // ovsflows -T
	NetworkPolicy string // ovsflows --networkpolicy
	Node          string // --node: through the API server, that node's agent
}

// Source is where answers come from: this node's agent when the CLI runs
// beside it (in the agent's pod), otherwise the API server.
type Source struct {
	// Local reaches this node's agent; nil when there is none here.
	Local Transport
	// LocalHint says why Local is nil, for errors (e.g. "no agent socket at /var/run/t1route/agent.sock").
	LocalHint string
	// Agents reaches every node's agent through pods/exec; nil without Kubernetes access.
	Agents *Agents
	// Dynamic reads the published summaries; nil without Kubernetes access.
	Dynamic dynamic.Interface
	// Parallel bounds the nodes asked at once (default 8).
	Parallel int
	Now      func() time.Time
}

// Get answers the query and prints it. When several nodes are asked, the
// answers of those that did answer are printed, each failure is written to
// errw with its node, and the error says how many failed.
func Get(ctx context.Context, src Source, q Query, f Format, w, errw io.Writer) error {
	if q.Pod != "" && q.Namespace == "" {
		q.Namespace = "default"
	}
	if q.NetworkPolicy != "" && q.Kind != KindOVSFlows {
		return fmt.Errorf("--networkpolicy selects flows: use it with ovsflows")
	}
	if q.Table != "" && q.Kind != KindOVSFlows {
		return fmt.Errorf("-T selects flows of a table: use it with ovsflows")
	}
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	if src.Local != nil && q.Node == "" {
		r, err := ask(ctx, Client{T: src.Local}, q)
		if err != nil {
			return err
		}
		return r.print(w, f, now())
	}
	if src.Agents == nil {
		hint := src.LocalHint
		if hint == "" {
			hint = "no t1route agent on this host"
		}
		return fmt.Errorf("%s, and no Kubernetes access to reach one through the API server: run this in an agent's pod, or give a kubeconfig (--kubeconfig or $KUBECONFIG)", hint)
	}

	var nodes []string
	switch {
	case q.Kind == KindAgentInfo && q.Node == "" && src.Dynamic != nil:
		// Every node at once: what the agents published, no exec needed.
		infos, err := PublishedInfos(ctx, src.Dynamic, "", now())
		if err != nil {
			return err
		}
		return answer{kind: KindAgentInfo, infos: infos}.print(w, f, now())
	case q.Node != "":
		nodes = []string{q.Node}
	case q.Pod != "":
		n, err := src.Agents.NodeOfPod(ctx, q.Namespace, q.Pod)
		if err != nil {
			return err
		}
		nodes = []string{n}
	default:
		var err error
		if nodes, err = src.Agents.Nodes(ctx); err != nil {
			return err
		}
	}
	parallel := src.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	results := ForNodes(ctx, nodes, parallel, func(ctx context.Context, node string) (answer, error) {
		return ask(ctx, Client{T: src.Agents.Transport(node)}, q)
	})
	all := answer{kind: q.Kind}
	var failed []string
	for _, r := range results {
		if r.Err != nil {
			if len(results) == 1 {
				return r.Err
			}
			fmt.Fprintf(errw, "error: node %s: %v\n", r.Node, r.Err)
			failed = append(failed, r.Node)
			continue
		}
		all.merge(r.Value)
	}
	if err := all.print(w, f, now()); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d nodes did not answer: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

// answer holds one kind's results, from one node or merged from several.
type answer struct {
	kind     Kind
	pods     []PodInterface
	flows    []Flow
	infos    []AgentInfo
	policies []PolicyList
}

func ask(ctx context.Context, c Client, q Query) (answer, error) {
	a := answer{kind: q.Kind}
	var err error
	switch q.Kind {
	case KindPodInterface:
		a.pods, err = c.PodInterfaces(ctx, q.Namespace, q.Pod)
	case KindOVSFlows:
		a.flows, err = c.Flows(ctx, FlowQuery{Namespace: q.Namespace, Pod: q.Pod, Table: q.Table, NetworkPolicy: q.NetworkPolicy})
	case KindAgentInfo:
		var in AgentInfo
		in, err = c.AgentInfo(ctx)
		a.infos = []AgentInfo{in}
	case KindNetworkPolicy:
		var l PolicyList
		l, err = c.NetworkPolicies(ctx, q.Namespace)
		a.policies = []PolicyList{l}
	default:
		err = errors.New("unknown kind " + string(q.Kind))
	}
	return a, err
}

func (a *answer) merge(b answer) {
	a.pods = append(a.pods, b.pods...)
	a.flows = append(a.flows, b.flows...)
	a.infos = append(a.infos, b.infos...)
	a.policies = append(a.policies, b.policies...)
}

func (a answer) print(w io.Writer, f Format, now time.Time) error {
	switch a.kind {
	case KindPodInterface:
		return PrintPodInterfaces(w, f, a.pods)
	case KindOVSFlows:
		return PrintFlows(w, f, a.flows)
	case KindNetworkPolicy:
		return PrintPolicies(w, f, a.policies)
	}
	return PrintAgentInfos(w, f, a.infos, now)
}
