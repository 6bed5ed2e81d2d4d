package doctor

import (
	"context"
	"net/http"

	nsxt "github.com/vmware/go-vmware-nsxt"

	"github.com/t1route/t1route/nsx"
)

// mpClient is the ManagementPlane over go-vmware-nsxt, on t1route's own
// transport: the same TLS, limits and authentication as the Policy API.
// (Temporary home: these calls belong in package nsx.)
type mpClient struct{ api *nsxt.APIClient }

// NewManagementPlane reads the manager through c's transport.
func NewManagementPlane(c *nsx.Client, userAgent string) (ManagementPlane, error) {
	api, err := nsxt.NewAPIClient(&nsxt.Configuration{BasePath: c.BaseURL() + "/api/v1", HTTPClient: c.HTTPClient(),
		SkipSessionAuth: true, RemoteAuth: true, DefaultHeader: map[string]string{}, UserAgent: userAgent})
	if err != nil {
		return nil, err
	}
	return mpClient{api}, nil
}

func (m mpClient) Version(ctx context.Context) (string, error) {
	props, resp, err := m.api.NsxComponentAdministrationApi.ReadNodeProperties(ctx)
	if err != nil {
		return "", refused(resp, "read node properties", "/api/v1/node", err)
	}
	return props.NodeVersion, nil
}

func (m mpClient) ClusterStatus(ctx context.Context) (string, error) {
	status, resp, err := m.api.NsxComponentAdministrationApi.ReadClusterStatus(ctx, nil)
	if err != nil {
		return "", refused(resp, "read cluster status", "/api/v1/cluster/status", err)
	}
	if status.MgmtClusterStatus == nil {
		return "", nil
	}
	return status.MgmtClusterStatus.Status, nil
}

// refused turns a 401 or 403 into the *nsx.APIError callers look for.
func refused(resp *http.Response, op, path string, err error) error {
	if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return &nsx.APIError{Op: op, Method: http.MethodGet, Path: path, StatusCode: resp.StatusCode, Message: err.Error()}
	}
	return err
}
