package nsxsim_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"testing"

	vapierrors "github.com/vmware/vsphere-automation-sdk-go/lib/vapi/std/errors"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/bindings"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/data"
	sdklog "github.com/vmware/vsphere-automation-sdk-go/runtime/log"
	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/security"
	nsxpolicy "github.com/vmware/vsphere-automation-sdk-go/services/nsxt"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra/tier_1s"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/search"

	"github.com/t1route/t1route/nsx/nsxsim"
)

type quietSDK struct{}

func (quietSDK) Error(...interface{})          {}
func (quietSDK) Errorf(string, ...interface{}) {}
func (quietSDK) Info(...interface{})           {}
func (quietSDK) Infof(string, ...interface{})  {}
func (quietSDK) Debug(...interface{})          {}
func (quietSDK) Debugf(string, ...interface{}) {}

func ptr[T any](v T) *T { return &v }

// sdkConnector is the SDK's own REST connector with its own basic-auth
// security context: nothing of t1route between the SDK and the simulator.
func sdkConnector(t *testing.T, sim *nsxsim.Simulator) vapiclient.Connector {
	sdklog.SetLogger(quietSDK{})
	user, pass := sim.User()
	hc := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}}}
	conn := vapiclient.NewRestConnector(sim.URL(), hc)
	conn.SetSecurityContext(security.NewUserPasswordSecurityContext(user, pass))
	return conn
}

// TestSDKConformance drives the simulator with the official SDK's generated
// clients, unchanged: the simulator's conformance test.
func TestSDKConformance(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	conn := sdkConnector(t, sim)

	t1 := infra.NewTier1sClient(conn)
	got, err := t1.Get("t1-routable")
	if err != nil {
		t.Fatalf("Tier1s.Get: %v", err)
	}
	if *got.Id != "t1-routable" || len(got.RouteAdvertisementTypes) != 2 || *got.Path != "/infra/tier-1s/t1-routable" {
		t.Fatalf("Tier1s.Get = id %s adv %v path %s", *got.Id, got.RouteAdvertisementTypes, *got.Path)
	}
	if err := t1.Patch("t1-b", model.Tier1{RouteAdvertisementTypes: []string{"TIER1_CONNECTED"}}); err != nil {
		t.Fatalf("Tier1s.Patch: %v", err)
	}
	list, err := t1.List(nil, nil, nil, nil, nil, nil)
	if err != nil || *list.ResultCount != 2 {
		t.Fatalf("Tier1s.List = %v, %v", list.ResultCount, err)
	}
	_, err = t1.Get("absent")
	var nf vapierrors.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("Tier1s.Get(absent) error = %T %v, want the SDK's NotFound", err, err)
	}

	routes := tier_1s.NewStaticRoutesClient(conn)
	route := model.StaticRoutes{Network: ptr("100.96.1.0/24"), NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.11"), AdminDistance: ptr(int64(1))}},
		Tags: []model.Tag{{Scope: ptr("t1route/cluster-uid"), Tag: ptr("uid-1")}}}
	if err := routes.Patch("t1-routable", "r1", route); err != nil {
		t.Fatalf("StaticRoutes.Patch: %v", err)
	}
	r1, err := routes.Get("t1-routable", "r1")
	if err != nil || *r1.Network != "100.96.1.0/24" || *r1.NextHops[0].IpAddress != "198.51.100.11" || *r1.Revision != 0 {
		t.Fatalf("StaticRoutes.Get = %+v, %v", r1, err)
	}
	// Update (PUT) with the current revision succeeds and returns the new object.
	r1.NextHops[0].IpAddress = ptr("198.51.100.12")
	updated, err := routes.Update("t1-routable", "r1", r1)
	if err != nil || *updated.Revision != 1 {
		t.Fatalf("StaticRoutes.Update = %v, %v", updated.Revision, err)
	}
	// A stale revision: the SDK surfaces NSX's 412 as InvalidRequest.
	_, err = routes.Update("t1-routable", "r1", r1)
	var inv vapierrors.InvalidRequest
	if !errors.As(err, &inv) {
		t.Fatalf("StaticRoutes.Update(stale) error = %T %v, want InvalidRequest", err, err)
	}
	page, err := routes.List("t1-routable", nil, nil, nil, ptr(int64(10)), nil, nil)
	if err != nil || len(page.Results) != 1 || page.Cursor != nil {
		t.Fatalf("StaticRoutes.List = %+v, %v", page, err)
	}

	// Hierarchical API through InfraClient.Patch.
	conv := bindings.NewTypeConverter()
	var children []*data.StructValue
	for _, c := range []model.ChildStaticRoutes{
		{ResourceType: "ChildStaticRoutes", StaticRoutes: &model.StaticRoutes{Id: ptr("r2"), ResourceType: ptr("StaticRoutes"), Network: ptr("100.96.2.0/24"),
			NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.12")}}}},
		{ResourceType: "ChildStaticRoutes", MarkedForDelete: ptr(true), StaticRoutes: &model.StaticRoutes{Id: ptr("r1"), ResourceType: ptr("StaticRoutes")}},
	} {
		v, errs := conv.ConvertToVapi(c, model.ChildStaticRoutesBindingType())
		if errs != nil {
			t.Fatal(errs)
		}
		children = append(children, v.(*data.StructValue))
	}
	ref, errs := conv.ConvertToVapi(model.ChildResourceReference{ResourceType: "ChildResourceReference", Id: ptr("t1-routable"), TargetType: ptr("Tier1"), Children: children},
		model.ChildResourceReferenceBindingType())
	if errs != nil {
		t.Fatal(errs)
	}
	if err := nsxpolicy.NewInfraClient(conn).Patch(model.Infra{ResourceType: ptr("Infra"), Children: []*data.StructValue{ref.(*data.StructValue)}}, nil); err != nil {
		t.Fatalf("Infra.Patch: %v", err)
	}
	if rs := sim.Routes("t1-routable"); len(rs) != 1 || rs[0].ID != "r2" {
		t.Fatalf("after Infra.Patch: %+v", rs)
	}

	// Search through QueryClient.
	res, err := search.NewQueryClient(conn).List(`resource_type:StaticRoutes AND id:r2`, nil, nil, nil, nil, nil)
	if err != nil || *res.ResultCount != 1 {
		t.Fatalf("Query.List = %v, %v", res.ResultCount, err)
	}

	if err := routes.Delete("t1-routable", "r2"); err != nil {
		t.Fatalf("StaticRoutes.Delete: %v", err)
	}
	if rs := sim.Routes("t1-routable"); len(rs) != 0 {
		t.Fatalf("after Delete: %+v", rs)
	}
}
