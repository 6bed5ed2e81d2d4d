package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Executor runs a command in a container of a pod through the API server
// (pods/exec, authorised by RBAC as the caller) and returns its output; a
// non-zero exit is an error, with stdout still returned.
type Executor interface {
	Exec(ctx context.Context, namespace, pod, container string, cmd []string) (stdout, stderr []byte, err error)
}

// Agents reaches node agents from outside the node: it finds the agent pod
// on a node and runs `t1route get --raw PATH` in it, which asks the agent
// on its socket. Nothing listens on the node's network; the API server
// authenticates the caller and authorises pods/exec into the agent pods.
type Agents struct {
	Kube      kubernetes.Interface
	Exec      Executor
	Namespace string // where the agent DaemonSet runs
	Selector  string // the agent pods' labels
	Container string // the agent's container
	Binary    string // t1route in the agent's image
}

// Agent DaemonSet defaults, as `t1route render` makes it.
const (
	DefaultAgentNamespace = "t1route-system"
	DefaultAgentSelector  = "app.kubernetes.io/name=t1route,app.kubernetes.io/component=agent"
	DefaultAgentContainer = "agent"
	DefaultAgentBinary    = "/usr/local/bin/t1route"
)

func (a Agents) withDefaults() Agents {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&a.Namespace, DefaultAgentNamespace)
	def(&a.Selector, DefaultAgentSelector)
	def(&a.Container, DefaultAgentContainer)
	def(&a.Binary, DefaultAgentBinary)
	return a
}

// PodOn returns the running agent pod on node. A node that does not exist,
// or has no running agent, is a NotFound error saying which.
func (a Agents) PodOn(ctx context.Context, node string) (string, error) {
	a = a.withDefaults()
	pods, err := a.Kube.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: a.Selector,
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return "", fmt.Errorf("find the t1route agent on node %s (list pods in %s): %w", node, a.Namespace, err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p.Name, nil
		}
	}
	if _, err := a.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return "", &Error{Reason: ReasonNotFound, Message: fmt.Sprintf("node %s not found (kubectl get nodes lists them)", node)}
	}
	return "", &Error{Reason: ReasonNotFound, Message: fmt.Sprintf("node %s has no running t1route agent pod in namespace %s (kubectl get pods -n %s -l %s -o wide)",
		node, a.Namespace, a.Namespace, a.Selector)}
}

// Nodes lists the nodes that have a running agent pod, sorted.
func (a Agents) Nodes(ctx context.Context) ([]string, error) {
	a = a.withDefaults()
	pods, err := a.Kube.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: a.Selector})
	if err != nil {
		return nil, fmt.Errorf("list the t1route agent pods in %s: %w", a.Namespace, err)
	}
	seen := map[string]bool{}
	var nodes []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" && !seen[p.Spec.NodeName] {
			seen[p.Spec.NodeName] = true
			nodes = append(nodes, p.Spec.NodeName)
		}
	}
	sort.Strings(nodes)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no running t1route agent pod in namespace %s (is t1route installed? kubectl get pods -n %s)", a.Namespace, a.Namespace)
	}
	return nodes, nil
}

// NodeOfPod returns the node a pod runs on, from the API server.
func (a Agents) NodeOfPod(ctx context.Context, namespace, pod string) (string, error) {
	p, err := a.Kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", &Error{Reason: ReasonNotFound, Message: fmt.Sprintf("pod %s/%s not found", namespace, pod)}
	}
	if err != nil {
		return "", fmt.Errorf("read pod %s/%s: %w", namespace, pod, err)
	}
	if p.Spec.NodeName == "" {
		return "", &Error{Reason: ReasonNotFound, Message: fmt.Sprintf("pod %s/%s is not scheduled to a node yet", namespace, pod)}
	}
	if p.Spec.HostNetwork {
		return "", &Error{Reason: ReasonNotFound, Message: fmt.Sprintf("pod %s/%s uses the host's network: it has no interface on t1route's bridge", namespace, pod)}
	}
	return p.Spec.NodeName, nil
}

// Transport returns a Transport to one node's agent.
func (a Agents) Transport(node string) Transport {
	return execTransport{a: a.withDefaults(), node: node}
}

type execTransport struct {
	a    Agents
	node string
}

func (t execTransport) Get(ctx context.Context, pathAndQuery string) ([]byte, error) {
	pod, err := t.a.PodOn(ctx, t.node)
	if err != nil {
		return nil, err
	}
	stdout, stderr, err := t.a.Exec.Exec(ctx, t.a.Namespace, pod, t.a.Container, []string{t.a.Binary, "get", "--raw", pathAndQuery})
	if err == nil {
		return stdout, nil
	}
	var e Error
	if json.Unmarshal(stdout, &e) == nil && e.Message != "" {
		return nil, &e
	}
	detail := strings.TrimSpace(string(stderr))
	if detail == "" {
		detail = strings.TrimSpace(string(stdout))
	}
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("node %s: you may not exec into %s/%s: introspection from outside the node needs pods/exec in namespace %s (docs/introspection.md has an example ClusterRole): %w",
			t.node, t.a.Namespace, pod, t.a.Namespace, err)
	}
	return nil, fmt.Errorf("node %s: %s get --raw %s in %s/%s: %w: %s", t.node, t.a.Binary, pathAndQuery, t.a.Namespace, pod, err, truncate(detail, 300))
}

// KubeExecutor runs commands through the API server's pods/exec, over
// WebSockets and, from older API servers, SPDY (as kubectl does).
type KubeExecutor struct {
	Config *rest.Config
	Kube   kubernetes.Interface
}

// Exec implements Executor.
func (e KubeExecutor) Exec(ctx context.Context, namespace, pod, container string, cmd []string) ([]byte, []byte, error) {
	req := e.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(e.Config, "POST", req.URL())
	if err != nil {
		return nil, nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(e.Config, "GET", req.URL().String())
	if err != nil {
		return nil, nil, err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, nil, err
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.Bytes(), stderr.Bytes(), err
}

// NodeResult is one node's answer, or its error.
type NodeResult[T any] struct {
	Node  string
	Value T
	Err   error
}

// ForNodes calls fn for each node, at most parallel at a time, and returns
// the results in the nodes' order.
func ForNodes[T any](ctx context.Context, nodes []string, parallel int, fn func(ctx context.Context, node string) (T, error)) []NodeResult[T] {
	out := make([]NodeResult[T], len(nodes))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, err := fn(ctx, n)
			out[i] = NodeResult[T]{Node: n, Value: v, Err: err}
		}()
	}
	wg.Wait()
	return out
}
