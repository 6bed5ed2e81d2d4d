package nsxsim_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
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

// withHeader adds a header to every request: how a caller of the SDK's
// unchanged generated clients sends X-Allow-Overwrite (its transport).
type withHeader struct {
	next        http.RoundTripper
	name, value string
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.next.RoundTrip(r)
}

// sdkErrorCode is NSX's error_code in an SDK error, decoded as the SDK's
// users do: the error's Data as the model's ApiError.
func sdkErrorCode(t *testing.T, err error) (int64, string) {
	t.Helper()
	var inv vapierrors.InvalidRequest
	if !errors.As(err, &inv) || inv.Data == nil {
		t.Fatalf("error %T %v, want the SDK's InvalidRequest with data", err, err)
	}
	v, errs := bindings.NewTypeConverter().ConvertToGolang(inv.Data, model.ApiErrorBindingType())
	if errs != nil {
		t.Fatalf("decoding the error data: %v", errs)
	}
	e := v.(model.ApiError)
	if e.ErrorCode == nil || e.ErrorMessage == nil {
		t.Fatalf("error data without error_code or error_message: %+v", e)
	}
	return *e.ErrorCode, *e.ErrorMessage
}

// TestSDKConformanceProtection drives principal-identity protection with the
// SDK's generated clients, unchanged: a protected PI (client certificate)
// creates, the admin sees REQUIRE_OVERRIDE and is refused without
// X-Allow-Overwrite, single-object and hierarchical alike, and succeeds with it.
func TestSDKConformanceProtection(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{PrincipalIdentities: []string{"cloud-provider"}, RateLimit: -1})
	admin := sdkConnector(t, sim)
	certPEM, keyPEM, err := sim.IssueClientCert("cloud-provider")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pi := vapiclient.NewRestConnector(sim.URL(), http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}})
	user, pass := sim.User()
	overwriter := vapiclient.NewRestConnector(sim.URL(), http.Client{Transport: withHeader{
		next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}},
		name: "X-Allow-Overwrite", value: "true"}})
	overwriter.SetSecurityContext(security.NewUserPasswordSecurityContext(user, pass))

	route := model.StaticRoutes{Network: ptr("100.96.1.0/24"), NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.11")}}}
	if err := tier_1s.NewStaticRoutesClient(pi).Patch("t1-routable", "cp1", route); err != nil {
		t.Fatalf("PI StaticRoutes.Patch: %v", err)
	}
	for _, tc := range []struct {
		name string
		conn vapiclient.Connector
		want string
	}{{"creator", pi, nsxsim.NotProtected}, {"admin", admin, nsxsim.RequireOverride}} {
		got, err := tier_1s.NewStaticRoutesClient(tc.conn).Get("t1-routable", "cp1")
		if err != nil || deref(got.Protection) != tc.want || deref(got.CreateUser) != "cloud-provider" {
			t.Fatalf("%s: Get = _protection %q _create_user %q, %v; want %s", tc.name, deref(got.Protection), deref(got.CreateUser), err, tc.want)
		}
	}

	// The admin without the header: refused, single-object and hierarchical.
	err = tier_1s.NewStaticRoutesClient(admin).Delete("t1-routable", "cp1")
	if code, msg := sdkErrorCode(t, err); code != nsxsim.CodeProtected || !strings.Contains(msg, "createUser=cloud-provider") {
		t.Fatalf("admin Delete: error_code %d %q", code, msg)
	}
	conv := bindings.NewTypeConverter()
	del, errs := conv.ConvertToVapi(model.ChildStaticRoutes{ResourceType: "ChildStaticRoutes", MarkedForDelete: ptr(true),
		StaticRoutes: &model.StaticRoutes{Id: ptr("cp1"), ResourceType: ptr("StaticRoutes")}}, model.ChildStaticRoutesBindingType())
	if errs != nil {
		t.Fatal(errs)
	}
	ref, errs := conv.ConvertToVapi(model.ChildResourceReference{ResourceType: "ChildResourceReference", Id: ptr("t1-routable"), TargetType: ptr("Tier1"),
		Children: []*data.StructValue{del.(*data.StructValue)}}, model.ChildResourceReferenceBindingType())
	if errs != nil {
		t.Fatal(errs)
	}
	infraBody := model.Infra{ResourceType: ptr("Infra"), Children: []*data.StructValue{ref.(*data.StructValue)}}
	err = nsxpolicy.NewInfraClient(admin).Patch(infraBody, nil)
	if code, msg := sdkErrorCode(t, err); code != nsxsim.CodeProtected || !strings.Contains(msg, "id=cp1") {
		t.Fatalf("admin Infra.Patch: error_code %d %q", code, msg)
	}
	if _, ok := sim.Route("t1-routable", "cp1"); !ok {
		t.Fatal("a refused call deleted the protected route")
	}
	// With X-Allow-Overwrite: true, the admin may.
	if err := nsxpolicy.NewInfraClient(overwriter).Patch(infraBody, nil); err != nil {
		t.Fatalf("admin Infra.Patch with X-Allow-Overwrite: %v", err)
	}
	if _, ok := sim.Route("t1-routable", "cp1"); ok {
		t.Fatal("the overwriting hierarchical delete left the route")
	}
}

// TestSDKConformanceForwardingTable reads a Tier-1's forwarding table with
// the SDK's ForwardingTableClient, page by page, filtered to static routes.
func TestSDKConformanceForwardingTable(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RateLimit: -1})
	conn := sdkConnector(t, sim)
	const n = 2500
	for i := range n {
		if err := sim.PutRoute("t1-routable", fmt.Sprintf("r%04d", i), fmt.Sprintf("100.%d.%d.0/24", 96+i/256, i%256), []string{"198.51.100.1"}); err != nil {
			t.Fatal(err)
		}
	}
	ft := tier_1s.NewForwardingTableClient(conn)
	var cursor *string
	seen := map[string]bool{}
	pages := 0
	for {
		res, err := ft.List("t1-routable", nil, cursor, nil, nil, nil, nil, nil, ptr(int64(1000)), ptr(tier_1s.ForwardingTable_LIST_ROUTE_SOURCE_STATIC), nil, nil)
		if err != nil {
			t.Fatalf("ForwardingTable.List page %d: %v", pages+1, err)
		}
		pages++
		if pages == 1 && deref(res.ResultCount) != n {
			t.Fatalf("result_count = %d, want %d", deref(res.ResultCount), n)
		}
		for _, tbl := range res.Results {
			if deref(tbl.Status) != model.RoutingTable_STATUS_SUCCESS || deref(tbl.EdgeNode) == "" || deref(tbl.Count) != int64(len(tbl.RouteEntries)) {
				t.Fatalf("routing table status %q edge %q count %d", deref(tbl.Status), deref(tbl.EdgeNode), deref(tbl.Count))
			}
			for _, e := range tbl.RouteEntries {
				if deref(e.NextHop) != "198.51.100.1" || deref(e.RouteType) != "t1s" || seen[deref(e.Network)] {
					t.Fatalf("entry %s via %s (%s), duplicate %t", deref(e.Network), deref(e.NextHop), deref(e.RouteType), seen[deref(e.Network)])
				}
				seen[deref(e.Network)] = true
			}
		}
		if res.Cursor == nil {
			break
		}
		cursor = res.Cursor
	}
	if pages != 3 || len(seen) != n {
		t.Fatalf("%d entries in %d pages, want %d in 3", len(seen), pages, n)
	}
	_, err := ft.List("absent", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	var nf vapierrors.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("ForwardingTable.List(absent) error = %T %v, want the SDK's NotFound", err, err)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p != nil {
		return *p
	}
	return zero
}
