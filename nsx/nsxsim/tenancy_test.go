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
	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/security"
	nsxpolicy "github.com/vmware/vsphere-automation-sdk-go/services/nsxt"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra/tier_1s"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects"
	projectinfra "github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/infra"
	projectrealized "github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/infra/realized_state"
	projecttier1s "github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/infra/tier_1s"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/vpcs"

	"github.com/t1route/t1route/nsx/nsxsim"
)

const (
	projectT1 = "/orgs/default/projects/tenant-a/infra/tier-1s/t1-pods"
	vpcPath   = "/orgs/default/projects/tenant-a/vpcs/vpc-pods"
)

var conv = bindings.NewTypeConverter()

func vapi(t *testing.T, v any, typ bindings.BindingType) *data.StructValue {
	t.Helper()
	dv, errs := conv.ConvertToVapi(v, typ)
	if errs != nil {
		t.Fatal(errs[0])
	}
	return dv.(*data.StructValue)
}

// routeChildren are ChildStaticRoutes wrappers in the SDK's models: upserts
// of the given ids (100.96.<i>.0/24) and deletes.
func routeChildren(t *testing.T, upserts []string, deletes ...string) []*data.StructValue {
	var out []*data.StructValue
	for i, id := range upserts {
		out = append(out, vapi(t, model.ChildStaticRoutes{ResourceType: "ChildStaticRoutes", StaticRoutes: &model.StaticRoutes{Id: ptr(id), ResourceType: ptr("StaticRoutes"),
			Network: ptr(fmt.Sprintf("100.96.%d.0/24", i)), NextHops: []model.RouterNexthop{{IpAddress: ptr(fmt.Sprintf("198.51.100.%d", 10+i%200))}}}}, model.ChildStaticRoutesBindingType()))
	}
	for _, id := range deletes {
		out = append(out, vapi(t, model.ChildStaticRoutes{ResourceType: "ChildStaticRoutes", MarkedForDelete: ptr(true),
			StaticRoutes: &model.StaticRoutes{Id: ptr(id), ResourceType: ptr("StaticRoutes")}}, model.ChildStaticRoutesBindingType()))
	}
	return out
}

func ref(t *testing.T, id, target string, children []*data.StructValue) []*data.StructValue {
	return []*data.StructValue{vapi(t, model.ChildResourceReference{ResourceType: "ChildResourceReference", Id: ptr(id), TargetType: ptr(target), Children: children},
		model.ChildResourceReferenceBindingType())}
}

func ids(routes []nsxsim.StaticRoute) string {
	var out []string
	for _, r := range routes {
		out = append(out, r.ID)
	}
	return strings.Join(out, ",")
}

// TestSDKConformanceProjectTier1 drives a Tier-1 inside a project with the
// SDK's own generated clients for orgs/projects, unchanged: the project and
// the Tier-1, static routes (patch, get, update with _revision, paged list,
// delete), the project's hierarchical call, its realized state and the
// Tier-1's forwarding table.
func TestSDKConformanceProjectTier1(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{projectT1}, RateLimit: -1})
	conn := sdkConnector(t, sim)

	p, err := orgs.NewProjectsClient(conn).Get("default", "tenant-a", nil)
	if err != nil || *p.Path != "/orgs/default/projects/tenant-a" || len(p.Tier0s) != 1 {
		t.Fatalf("Projects.Get = %+v, %v", p, err)
	}
	var nf vapierrors.NotFound
	if _, err := orgs.NewProjectsClient(conn).Get("default", "absent", nil); !errors.As(err, &nf) {
		t.Fatalf("Projects.Get(absent) error = %T %v, want NotFound", err, err)
	}
	t1, err := projectinfra.NewTier1sClient(conn).Get("default", "tenant-a", "t1-pods")
	if err != nil || *t1.Path != projectT1 || *t1.ParentPath != "/orgs/default/projects/tenant-a/infra" || len(t1.RouteAdvertisementTypes) != 2 {
		t.Fatalf("project Tier1s.Get = %+v, %v", t1, err)
	}
	if _, err := projectinfra.NewTier1sClient(conn).Get("default", "tenant-a", "t1-routable"); !errors.As(err, &nf) {
		t.Fatalf("a default-space Tier-1 seen in the project: %T %v", err, err)
	}

	routes := projecttier1s.NewStaticRoutesClient(conn)
	route := model.StaticRoutes{Network: ptr("100.96.1.0/24"), NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.11")}}}
	if err := routes.Patch("default", "tenant-a", "t1-pods", "r1", route); err != nil {
		t.Fatalf("StaticRoutes.Patch: %v", err)
	}
	r1, err := routes.Get("default", "tenant-a", "t1-pods", "r1")
	if err != nil || *r1.Path != projectT1+"/static-routes/r1" || *r1.Revision != 0 {
		t.Fatalf("StaticRoutes.Get = %+v, %v", r1, err)
	}
	r1.NextHops[0].IpAddress = ptr("198.51.100.12")
	if up, err := routes.Update("default", "tenant-a", "t1-pods", "r1", r1); err != nil || *up.Revision != 1 {
		t.Fatalf("StaticRoutes.Update = %v, %v", up.Revision, err)
	}
	var inv vapierrors.InvalidRequest
	if _, err := routes.Update("default", "tenant-a", "t1-pods", "r1", r1); !errors.As(err, &inv) {
		t.Fatalf("StaticRoutes.Update(stale) error = %T %v, want InvalidRequest", err, err)
	}
	if len(sim.Routes("t1-routable")) != 0 {
		t.Fatal("a project route landed on the default space's Tier-1 of another id")
	}

	// The project's hierarchical call: PATCH /orgs/default/projects/tenant-a/infra.
	ids250 := make([]string, 250)
	for i := range ids250 {
		ids250[i] = fmt.Sprintf("h%03d", i)
	}
	infraBody := model.Infra{ResourceType: ptr("Infra"), Children: ref(t, "t1-pods", "Tier1", routeChildren(t, ids250, "r1"))}
	if err := projects.NewInfraClient(conn).Patch("default", "tenant-a", infraBody, nil); err != nil {
		t.Fatalf("project Infra.Patch: %v", err)
	}
	if got := sim.Routes(projectT1); len(got) != 250 || got[0].ID != "h000" {
		t.Fatalf("after project Infra.Patch: %d routes", len(got))
	}
	// Paged list.
	var cursor *string
	seen := 0
	for pages := 1; ; pages++ {
		page, err := routes.List("default", "tenant-a", "t1-pods", cursor, nil, nil, ptr(int64(100)), nil, nil)
		if err != nil || pages > 3 {
			t.Fatalf("StaticRoutes.List page %d: %v", pages, err)
		}
		seen += len(page.Results)
		if page.Cursor == nil {
			break
		}
		cursor = page.Cursor
	}
	if seen != 250 {
		t.Fatalf("listed %d routes in pages, want 250", seen)
	}
	// Realized state through the project's own endpoint.
	st, err := projectrealized.NewRealizedEntitiesClient(conn).List("default", "tenant-a", projectT1+"/static-routes/h001", nil)
	if err != nil || len(st.Results) != 1 || *st.Results[0].State != "REALIZED" {
		t.Fatalf("project RealizedEntities.List = %+v, %v", st, err)
	}
	if _, err := projectrealized.NewRealizedEntitiesClient(conn).List("default", "tenant-b", projectT1+"/static-routes/h001", nil); !errors.As(err, &nf) {
		t.Fatalf("another project's realized state answered for tenant-a's route: %T %v", err, err)
	}
	// Forwarding table.
	ft, err := projecttier1s.NewForwardingTableClient(conn).List("default", "tenant-a", "t1-pods", nil, nil, nil, nil, nil, nil, nil, nil,
		ptr(tier_1s.ForwardingTable_LIST_ROUTE_SOURCE_STATIC), nil, nil)
	if err != nil || len(ft.Results) != 1 || len(ft.Results[0].RouteEntries) != 250 {
		t.Fatalf("project ForwardingTable.List = %v, %v", ft.ResultCount, err)
	}
	if err := routes.Delete("default", "tenant-a", "t1-pods", "h000"); err != nil {
		t.Fatalf("StaticRoutes.Delete: %v", err)
	}
	if sim.RouteCount(projectT1) != 249 {
		t.Fatalf("after Delete: %d routes", sim.RouteCount(projectT1))
	}
}

// TestSDKConformanceVPC drives a VPC's static routes with the SDK's own
// generated clients (orgs/projects/vpcs), unchanged, and its hierarchical
// call through OrgRootClient (PATCH /org-root with references to the org,
// the project and the VPC), and reads their realized state from the
// project's endpoint.
func TestSDKConformanceVPC(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{Routers: []string{vpcPath}, RateLimit: -1})
	conn := sdkConnector(t, sim)

	v, err := projects.NewVpcsClient(conn).Get("default", "tenant-a", "vpc-pods")
	if err != nil || *v.Path != vpcPath || deref(v.DefaultGatewayPath) == "" {
		t.Fatalf("Vpcs.Get = %+v, %v", v, err)
	}
	list, err := projects.NewVpcsClient(conn).List("default", "tenant-a", nil, nil, nil, nil, nil, nil)
	if err != nil || *list.ResultCount != 1 {
		t.Fatalf("Vpcs.List = %v, %v", list.ResultCount, err)
	}
	routes := vpcs.NewStaticRoutesClient(conn)
	route := model.StaticRoutes{Network: ptr("100.96.1.0/24"), NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.11")}},
		Tags: []model.Tag{{Scope: ptr("t1route/cluster-uid"), Tag: ptr("uid-1")}}}
	if err := routes.Patch("default", "tenant-a", "vpc-pods", "r1", route); err != nil {
		t.Fatalf("VPC StaticRoutes.Patch: %v", err)
	}
	r1, err := routes.Get("default", "tenant-a", "vpc-pods", "r1")
	if err != nil || *r1.Path != vpcPath+"/static-routes/r1" || *r1.ParentPath != vpcPath || len(r1.Tags) != 1 {
		t.Fatalf("VPC StaticRoutes.Get = %+v, %v", r1, err)
	}
	if up, err := routes.Update("default", "tenant-a", "vpc-pods", "r1", r1); err != nil || *up.Revision != 1 {
		t.Fatalf("VPC StaticRoutes.Update = %v, %v", up.Revision, err)
	}
	orgRoot := model.OrgRoot{ResourceType: ptr("OrgRoot"),
		Children: ref(t, "default", "Org", ref(t, "tenant-a", "Project", ref(t, "vpc-pods", "Vpc", routeChildren(t, []string{"h0", "h1"}, "r1"))))}
	if err := nsxpolicy.NewOrgRootClient(conn).Patch(orgRoot, nil); err != nil {
		t.Fatalf("OrgRoot.Patch: %v", err)
	}
	if got := ids(sim.Routes(vpcPath)); got != "h0,h1" {
		t.Fatalf("after OrgRoot.Patch: routes %s, want h0,h1", got)
	}
	// A reference to a VPC that does not exist fails the whole call.
	bad := model.OrgRoot{ResourceType: ptr("OrgRoot"),
		Children: ref(t, "default", "Org", ref(t, "tenant-a", "Project", append(ref(t, "absent", "Vpc", routeChildren(t, []string{"x"})),
			ref(t, "vpc-pods", "Vpc", routeChildren(t, nil, "h0"))...)))}
	var nf vapierrors.NotFound
	if err := nsxpolicy.NewOrgRootClient(conn).Patch(bad, nil); !errors.As(err, &nf) {
		t.Fatalf("OrgRoot.Patch to an absent VPC: %T %v, want NotFound", err, err)
	}
	if got := ids(sim.Routes(vpcPath)); got != "h0,h1" {
		t.Fatalf("a refused OrgRoot.Patch changed routes: %s", got)
	}
	page, err := routes.List("default", "tenant-a", "vpc-pods", nil, nil, nil, nil, nil, nil)
	if err != nil || len(page.Results) != 2 || page.Cursor != nil {
		t.Fatalf("VPC StaticRoutes.List = %+v, %v", page, err)
	}
	st, err := projectrealized.NewRealizedEntitiesClient(conn).List("default", "tenant-a", vpcPath+"/static-routes/h1", nil)
	if err != nil || len(st.Results) != 1 || *st.Results[0].State != "REALIZED" {
		t.Fatalf("realized state of a VPC route = %+v, %v", st, err)
	}
	if err := routes.Delete("default", "tenant-a", "vpc-pods", "h1"); err != nil {
		t.Fatalf("VPC StaticRoutes.Delete: %v", err)
	}
	if got := ids(sim.Routes(vpcPath)); got != "h0" {
		t.Fatalf("after Delete: %s", got)
	}
}

// forbidden decodes the SDK's Unauthorized error (NSX's 403) into NSX's error_code.
func forbidden(t *testing.T, err error) int64 {
	t.Helper()
	var un vapierrors.Unauthorized
	if !errors.As(err, &un) || un.Data == nil {
		t.Fatalf("error %T %v, want the SDK's Unauthorized with data", err, err)
	}
	v, errs := conv.ConvertToGolang(un.Data, model.ApiErrorBindingType())
	if errs != nil {
		t.Fatal(errs[0])
	}
	return deref(v.(model.ApiError).ErrorCode)
}

// TestProjectScopedUser: a user whose role is scoped to a project writes its
// project's Tier-1 and VPC (single objects, the project's hierarchical call
// and /org-root for its VPC), and is refused everything else, /infra and
// another project alike, with NSX's 403 and error_code 401, through the
// SDK's own clients; nothing refused changes anything.
func TestProjectScopedUser(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{RateLimit: -1,
		Users:        map[string]string{"admin": "admin-pw", "alice": "alice-pw"},
		ProjectUsers: map[string]string{"alice": "/orgs/default/projects/tenant-a"},
		Routers:      []string{projectT1, vpcPath, "/orgs/default/projects/tenant-b/vpcs/other"}})
	hc := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}}}
	alice := vapiclient.NewRestConnector(sim.URL(), hc)
	alice.SetSecurityContext(security.NewUserPasswordSecurityContext("alice", "alice-pw"))
	route := model.StaticRoutes{Network: ptr("100.96.1.0/24"), NextHops: []model.RouterNexthop{{IpAddress: ptr("198.51.100.11")}}}

	// Allowed: inside tenant-a.
	if err := projecttier1s.NewStaticRoutesClient(alice).Patch("default", "tenant-a", "t1-pods", "r1", route); err != nil {
		t.Fatalf("project Tier-1 route: %v", err)
	}
	if err := projects.NewInfraClient(alice).Patch("default", "tenant-a", model.Infra{ResourceType: ptr("Infra"),
		Children: ref(t, "t1-pods", "Tier1", routeChildren(t, []string{"h0"}))}, nil); err != nil {
		t.Fatalf("project Infra.Patch: %v", err)
	}
	mine := model.OrgRoot{ResourceType: ptr("OrgRoot"), Children: ref(t, "default", "Org", ref(t, "tenant-a", "Project", ref(t, "vpc-pods", "Vpc", routeChildren(t, []string{"v0"}))))}
	if err := nsxpolicy.NewOrgRootClient(alice).Patch(mine, nil); err != nil {
		t.Fatalf("OrgRoot.Patch for its own VPC: %v", err)
	}
	if ids(sim.Routes(projectT1)) != "h0,r1" || ids(sim.Routes(vpcPath)) != "v0" {
		t.Fatalf("routes %s / %s", ids(sim.Routes(projectT1)), ids(sim.Routes(vpcPath)))
	}

	// Refused: /infra, and another project.
	refused := map[string]error{
		"PATCH /infra": nsxpolicy.NewInfraClient(alice).Patch(model.Infra{ResourceType: ptr("Infra"),
			Children: ref(t, "t1-routable", "Tier1", routeChildren(t, []string{"x"}))}, nil),
		"PATCH /infra/tier-1s/t1-routable/static-routes/x": tier_1s.NewStaticRoutesClient(alice).Patch("t1-routable", "x", route),
		"PATCH tenant-b's VPC route":                       vpcs.NewStaticRoutesClient(alice).Patch("default", "tenant-b", "other", "x", route),
		"PATCH /org-root for tenant-b": nsxpolicy.NewOrgRootClient(alice).Patch(model.OrgRoot{ResourceType: ptr("OrgRoot"),
			Children: ref(t, "default", "Org", ref(t, "tenant-b", "Project", ref(t, "other", "Vpc", routeChildren(t, []string{"x"}))))}, nil),
	}
	_, getErr := tier_1s.NewStaticRoutesClient(alice).List("t1-routable", nil, nil, nil, nil, nil, nil)
	refused["GET /infra/tier-1s/t1-routable/static-routes"] = getErr
	for what, err := range refused {
		if code := forbidden(t, err); code != nsxsim.CodeNotAuthorized {
			t.Errorf("%s: error_code %d, want %d", what, code, nsxsim.CodeNotAuthorized)
		}
	}
	if len(sim.Routes("t1-routable")) != 0 || len(sim.Routes("/orgs/default/projects/tenant-b/vpcs/other")) != 0 {
		t.Fatal("a refused call changed routes")
	}
	// The admin is not scoped.
	if err := tier_1s.NewStaticRoutesClient(sdkConnector(t, sim)).Patch("t1-routable", "x", route); err != nil {
		t.Fatalf("admin: %v", err)
	}
}
