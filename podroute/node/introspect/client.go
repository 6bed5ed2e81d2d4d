package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
)

// Transport carries one GET of the introspection API to an agent and back.
type Transport interface {
	// Get returns the body of a 2xx answer, or the API's *Error.
	Get(ctx context.Context, pathAndQuery string) ([]byte, error)
}

// SocketTransport reaches the agent of this node through its unix socket.
type SocketTransport struct{ Path string }

// Raw performs one GET and returns the status and body as the agent sent
// them (`t1route get --raw`).
func (t SocketTransport) Raw(ctx context.Context, pathAndQuery string) (int, []byte, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", t.Path)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+pathAndQuery, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return 0, nil, fmt.Errorf("no t1route agent answers on %s: run this inside the agent's pod, where the agent serves it "+
				"(or give --node NAME to go through the API server)", t.Path)
		case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
			return 0, nil, fmt.Errorf("%s: permission denied: the agent serves root and its own user only", t.Path)
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF):
			return 0, nil, fmt.Errorf("the agent on %s closed the connection: it serves root and its own user only", t.Path)
		}
		return 0, nil, fmt.Errorf("introspection socket %s: %w", t.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, body, err
}

// Get implements Transport.
func (t SocketTransport) Get(ctx context.Context, pathAndQuery string) ([]byte, error) {
	status, body, err := t.Raw(ctx, pathAndQuery)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, DecodeError(status, body)
	}
	return body, nil
}

// DecodeError reads an API error body; a body that is not one becomes an
// error quoting it.
func DecodeError(status int, body []byte) error {
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return &e
	}
	return fmt.Errorf("introspection API answered HTTP %d: %s", status, truncate(string(body), 300))
}

// Client reads one agent's introspection API.
type Client struct{ T Transport }

func (c Client) get(ctx context.Context, path string, q url.Values, out any) error {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	body, err := c.T.Get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("read the agent's answer to %s: %w", path, err)
	}
	return nil
}

func values(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// PodInterfaces lists attached pods ("" namespace: all; "" pod: every pod).
func (c Client) PodInterfaces(ctx context.Context, namespace, pod string) ([]PodInterface, error) {
	var out []PodInterface
	return out, c.get(ctx, PathPodInterfaces, values("namespace", namespace, "pod", pod), &out)
}

// Flows lists flows matching q.
func (c Client) Flows(ctx context.Context, q FlowQuery) ([]Flow, error) {
	var out []Flow
	return out, c.get(ctx, PathFlows, values("namespace", q.Namespace, "pod", q.Pod, "table", q.Table, "networkpolicy", q.NetworkPolicy), &out)
}

// AgentInfo reads the agent's state.
func (c Client) AgentInfo(ctx context.Context) (AgentInfo, error) {
	var out AgentInfo
	return out, c.get(ctx, PathAgentInfo, nil, &out)
}

// NetworkPolicies lists the policies the agent enforces.
func (c Client) NetworkPolicies(ctx context.Context, namespace string) (PolicyList, error) {
	var out PolicyList
	return out, c.get(ctx, PathNetworkPolicies, values("namespace", namespace), &out)
}
