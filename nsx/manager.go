package nsx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	nsxt "github.com/vmware/go-vmware-nsxt"
)

// Management cluster states NSX reports (GET /api/v1/cluster/status).
const (
	ClusterStable        = "STABLE"
	ClusterDegraded      = "DEGRADED"
	ClusterUnstable      = "UNSTABLE"
	ClusterNoControllers = "NO_CONTROLLERS"
)

// ManagerStatus is what the Management Plane API says of the manager.
type ManagerStatus struct {
	// Version is the manager's NSX version (node_version), e.g. "4.1.2.0.0.22589037".
	Version string
	// Cluster is the management cluster's status as NSX reports it (one of
	// the Cluster constants, or another value a newer NSX may add); "" when
	// it could not be read, and then ClusterErr says why.
	Cluster string
	// ClusterErr is why Cluster is unknown: the call failed (the user may
	// lack read access to it) or NSX's answer held no status.
	ClusterErr error
}

// ManagerStatus reads the manager's version (GET /api/v1/node) and its
// management cluster status (GET /api/v1/cluster/status) through the
// Management Plane API client (go-vmware-nsxt), over this client's own
// stack: the same TLS, authentication, limits and retries, and no others.
// An error (*APIError or *TransportError, as from any call) means the
// version could not be read, e.g. the credentials were refused; a failure
// to read only the cluster status is reported in ClusterErr.
func (c *Client) ManagerStatus(ctx context.Context) (ManagerStatus, error) {
	var st ManagerStatus
	err := c.run(ctx, "read manager version", "GET", "/api/v1/node", func(ctx context.Context) error {
		props, _, err := c.mpClient(ctx).NsxComponentAdministrationApi.ReadNodeProperties(ctx)
		st.Version = props.NodeVersion
		return err
	})
	if err != nil {
		return ManagerStatus{}, err
	}
	st.ClusterErr = c.run(ctx, "read manager cluster status", "GET", "/api/v1/cluster/status", func(ctx context.Context) error {
		cs, _, err := c.mpClient(ctx).NsxComponentAdministrationApi.ReadClusterStatus(ctx, nil)
		if err == nil && cs.MgmtClusterStatus != nil {
			st.Cluster = cs.MgmtClusterStatus.Status
		}
		return err
	})
	if st.ClusterErr == nil && st.Cluster == "" {
		st.ClusterErr = errNoClusterStatus
	}
	return st, nil
}

var errNoClusterStatus = errors.New("nsx: the manager's cluster status answer holds no mgmt_cluster_status")

// maxMPAnswer bounds what go-vmware-nsxt may read of one answer: it reads
// error bodies whole, and a proxy's may not end.
const maxMPAnswer = 4 << 20

// mpClient is a go-vmware-nsxt client for one call with ctx. Its generated
// methods build requests without a context, and it retries on its own,
// logging "[DEBUG] Retrying request" to the standard logger, whenever a
// request gets no response (however long the transport below has already
// retried it); so every request goes through mpTransport, which gives it
// ctx and always answers.
func (c *Client) mpClient(ctx context.Context) *nsxt.APIClient {
	cfg := &nsxt.Configuration{
		BasePath:   c.base.String() + "/api/v1",
		HTTPClient: &http.Client{Transport: &mpTransport{hc: c.http, ctx: ctx}, CheckRedirect: RefuseRedirect},
		// Authentication is the transport's: no session login of its own, and
		// RemoteAuth keeps it from adding an empty basic-auth header.
		SkipSessionAuth: true,
		RemoteAuth:      true,
		DefaultHeader:   map[string]string{},
		UserAgent:       "t1route",
		// Never consulted: no answer reaches it with a status to retry on.
		RetriesConfiguration: nsxt.ClientRetriesConfiguration{MaxRetries: 1},
	}
	client, _ := nsxt.NewAPIClient(cfg) // fails only without an HTTPClient
	return client
}

// mpTransport sends go-vmware-nsxt's requests through the client's stack
// with the call's context. A request that gets no answer (the stack gave up)
// is answered 502 instead of failing, so go-vmware-nsxt does not retry it;
// the client's record of the call keeps the real failure, which run reports.
type mpTransport struct {
	hc  *http.Client
	ctx context.Context
}

func (t *mpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.hc.Do(req.WithContext(t.ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &http.Response{
			StatusCode: http.StatusBadGateway, Status: "502 no answer (" + Sanitize(err.Error(), 200) + ")",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody, Request: req,
		}, nil
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxMPAnswer), resp.Body}
	return resp, nil
}
