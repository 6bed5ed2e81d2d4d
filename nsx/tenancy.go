package nsx

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs"
)

// NSX's multi-tenancy (4.1 and later): projects under an org, each with its
// own policy tree (/orgs/<org>/projects/<p>/infra) and VPCs
// (/orgs/<org>/projects/<p>/vpcs/<vpc>). doctor reads what it checks of
// them here.

// Project is what t1route needs to know of an NSX project.
type Project struct {
	ID, Path, DisplayName string
	// Tier0s are the Tier-0 gateways (or VRFs) the project may use.
	Tier0s []string
}

// Project reads the project of a path inside one.
func (c *Client) Project(ctx context.Context, p RouterPath) (Project, error) {
	if p.Project() == "" {
		return Project{}, fmt.Errorf("nsx: %s is not inside a project", p)
	}
	var m model.Project
	err := c.call(ctx, "get project", "GET", policyAPI+p.ProjectPath(), func(conn vapiclient.Connector) error {
		var err error
		m, err = orgs.NewProjectsClient(conn).Get(p.Org(), p.Project(), nil)
		return err
	})
	if err != nil {
		return Project{}, err
	}
	return Project{ID: p.Project(), Path: deref(m.Path), DisplayName: deref(m.DisplayName), Tier0s: m.Tier0s}, nil
}

// VPCInfo is what t1route needs to know of a VPC: how it reaches the
// outside, which decides whether its static routes do.
type VPCInfo struct {
	ID, Path, DisplayName string
	// DefaultGatewayPath is the Tier-0 (or VRF) that is the VPC's gateway
	// (NSX 4.1's Vpc.default_gateway_path); "" when not set.
	DefaultGatewayPath string
	// ConnectivityProfiles are the VPC connectivity profiles of its
	// attachments (NSX 9's .../vpcs/<vpc>/attachments); nil when the
	// manager has no attachments API (404) or none is set.
	ConnectivityProfiles []string
}

// Connected reports whether the VPC has a way out: a default gateway or an
// attachment with a connectivity profile. Without one its static routes
// lead nowhere outside the VPC.
func (v VPCInfo) Connected() bool {
	return v.DefaultGatewayPath != "" || len(v.ConnectivityProfiles) > 0
}

// vpcBody is the part of NSX's Vpc object VPC reads. It is decoded here,
// not through the SDK's model: newer managers describe the VPC's
// connectivity with fields the SDK's model (services/nsxt v0.12.0) lacks.
type vpcBody struct {
	ID                 string `json:"id"`
	Path               string `json:"path"`
	DisplayName        string `json:"display_name"`
	DefaultGatewayPath string `json:"default_gateway_path"`
}

type vpcAttachments struct {
	Results []struct {
		ConnectivityProfile string `json:"vpc_connectivity_profile"`
	} `json:"results"`
}

// VPC reads a VPC and how it connects to the outside.
func (c *Client) VPC(ctx context.Context, p RouterPath) (VPCInfo, error) {
	if !p.IsVPC() {
		return VPCInfo{}, fmt.Errorf("nsx: %s is not a VPC", p)
	}
	var body vpcBody
	path := p.apiPath()
	if err := c.run(ctx, "get vpc", "GET", path, func(ctx context.Context) error {
		return c.send(ctx, "GET", path, nil, nil, &body)
	}); err != nil {
		return VPCInfo{}, err
	}
	if body.ID == "" {
		return VPCInfo{}, fmt.Errorf("nsx: get vpc %s: NSX answered 200 with a body that is not a VPC (no id)", p)
	}
	info := VPCInfo{ID: body.ID, Path: body.Path, DisplayName: body.DisplayName, DefaultGatewayPath: body.DefaultGatewayPath}
	var att vpcAttachments
	apath := path + "/attachments"
	err := c.run(ctx, "list vpc attachments", "GET", apath, func(ctx context.Context) error {
		return c.send(ctx, "GET", apath, url.Values{"page_size": {"1000"}}, nil, &att)
	})
	switch {
	case IsNotFound(err):
		// A manager before NSX 9 has no attachments: the default gateway says it all.
	case err != nil:
		return VPCInfo{}, err
	default:
		for _, a := range att.Results {
			if a.ConnectivityProfile != "" {
				info.ConnectivityProfiles = append(info.ConnectivityProfiles, a.ConnectivityProfile)
			}
		}
	}
	return info, nil
}

// ErrorCodeNotAuthorized is NSX's error_code (with HTTP 403) for a caller
// whose role does not allow the operation on the object, as opposed to
// credentials NSX does not accept (403 with error_code 403).
const ErrorCodeNotAuthorized = 401

// IsNotAuthorized reports whether err is NSX refusing the operation to the
// caller's role (its credentials were accepted).
func IsNotAuthorized(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == 403 && e.ErrorCode == ErrorCodeNotAuthorized
}
