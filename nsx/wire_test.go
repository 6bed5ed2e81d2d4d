package nsx

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/vsphere-automation-sdk-go/runtime/bindings"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/data"
	"github.com/vmware/vsphere-automation-sdk-go/runtime/data/serializers/cleanjson"
	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	nsxpolicy "github.com/vmware/vsphere-automation-sdk-go/services/nsxt"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects"
)

var update = flag.Bool("update", false, "rewrite testdata/hierarchical/*.json from the encoder")

// TestEncodeRoutesPatchMatchesSDK: the hierarchical body t1route encodes
// itself is what NSX would get from the SDK for the same routes. Each case's
// body (1) is byte for byte the body the SDK's own InfraClient.Patch sends
// for the model.Infra the client built before it encoded bodies itself
// (sdkModel), (2) decodes, through the SDK's JSON decoder and bindings, to
// exactly that model, and (3) matches testdata/hierarchical/NAME.json, a
// record of the wire format (go test -run TestEncodeRoutesPatch -update
// rewrites it).
func TestEncodeRoutesPatchMatchesSDK(t *testing.T) {
	controller := Route{ID: "t1route-00000000-0000-4000-8000-000000000001-node-a", DisplayName: "prod/node-a/100.96.0.0/26",
		Network: "100.96.0.0/26", NextHops: []NextHop{{IP: "198.51.100.10"}},
		Tags: []Tag{{Scope: "t1route/managed-by", Tag: "t1route"}, {Scope: "t1route/cluster-uid", Tag: "00000000-0000-4000-8000-000000000001"},
			{Scope: "t1route/cluster", Tag: "prod"}, {Scope: "t1route/node", Tag: "node-a"}}}
	cases := []struct {
		name    string
		tier1   string
		upserts []Route
		deletes []string
	}{
		{name: "controller-route", tier1: "t1-pods", upserts: []Route{controller}},
		{name: "deletes-only", tier1: "t1-pods", deletes: []string{"r1", "r2"}},
		{name: "deletes-then-upserts", tier1: "T1_Gateway", deletes: []string{"old"}, upserts: []Route{controller,
			{ID: "r2", Network: "100.96.0.64/26", NextHops: []NextHop{{IP: "198.51.100.11"}}}}},
		{name: "ipv6-several-hops-admin-distance", tier1: "t1", upserts: []Route{{ID: "v6", Description: "two paths",
			Network: "2001:db8:1::/64", NextHops: []NextHop{{IP: "2001:db8::a", AdminDistance: 2}, {IP: "2001:db8::b", AdminDistance: -1}, {IP: "2001:db8::c"}}}}},
		{name: "no-next-hops-no-tags", tier1: "t1", upserts: []Route{{ID: "bare", Network: "100.96.1.0/26"}, {ID: "empty"}}},
		{name: "escaping", tier1: "t1", upserts: []Route{{ID: "id<&>\"\\", DisplayName: "caf\u00e9 \u2028\u2029 \U0001F600",
			Description: "tab\tnew\nline\x01\x7f", Network: "100.96.2.0/26", NextHops: []NextHop{{IP: "198.51.100.1"}},
			Tags: []Tag{{Scope: "", Tag: "<script>"}, {Scope: "s", Tag: ""}}}}, deletes: []string{"a&b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeRouterPatch(Tier1Path(tc.tier1), tc.upserts, tc.deletes)
			if err != nil {
				t.Fatal(err)
			}
			want := sdkModel(t, tc.tier1, tc.upserts, tc.deletes)
			if sent := sdkWire(t, want); !bytes.Equal(got, sent) {
				t.Errorf("body differs from the SDK's:\n got %s\nwant %s", got, sent)
			}
			if decoded := decodeWithSDK(t, got); !reflect.DeepEqual(decoded, flatten(t, want)) {
				t.Errorf("decoded through the SDK's bindings:\n got %+v\nwant %+v", decoded, flatten(t, want))
			}
			checkGolden(t, tc.name, got)
		})
	}
}

// checkGolden compares a body with testdata/hierarchical/NAME.json (-update rewrites it).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", "hierarchical", name+".json")
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recorded, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(recorded, indented.Bytes()) {
		t.Errorf("body differs from %s:\n%s", golden, indented.Bytes())
	}
}

// TestEncodeRouterPatchTenancyMatchesSDK: for a Tier-1 inside a project the
// body is byte for byte what the SDK's orgs/projects InfraClient.Patch sends
// (to PATCH /orgs/<org>/projects/<p>/infra), and for a VPC what the SDK's
// OrgRootClient.Patch sends (to PATCH /org-root) for an OrgRoot holding
// references to the org, the project and the VPC, the same routes below.
func TestEncodeRouterPatchTenancyMatchesSDK(t *testing.T) {
	ups := []Route{{ID: "t1route-uid-100.96.0.0_26", DisplayName: "prod/node-a/100.96.0.0/26", Network: "100.96.0.0/26",
		NextHops: []NextHop{{IP: "198.51.100.10"}}, Tags: []Tag{{Scope: "t1route/cluster-uid", Tag: "uid"}}}}
	dels := []string{"old"}

	project := MustRouterPath("/orgs/default/projects/tenant-a/infra/tier-1s/t1-pods")
	got, err := encodeRouterPatch(project, ups, dels)
	if err != nil {
		t.Fatal(err)
	}
	infraRoot := sdkModel(t, "t1-pods", ups, dels)
	var path string
	sent := sdkWireWith(t, &path, func(conn vapiclient.Connector) error {
		return projects.NewInfraClient(conn).Patch("default", "tenant-a", infraRoot, nil)
	})
	if !bytes.Equal(got, sent) || path != project.hierarchicalPath() {
		t.Errorf("project Tier-1: body or path differs from the SDK's:\n got %s %s\nwant %s %s", project.hierarchicalPath(), got, path, sent)
	}
	if decoded := decodeWithSDK(t, got); !reflect.DeepEqual(decoded, flatten(t, infraRoot)) {
		t.Errorf("project Tier-1: decoded through the SDK's bindings:\n got %+v\nwant %+v", decoded, flatten(t, infraRoot))
	}
	checkGolden(t, "project-tier1", got)

	vpc := MustRouterPath("/orgs/default/projects/tenant-a/vpcs/vpc-pods")
	got, err = encodeRouterPatch(vpc, ups, dels)
	if err != nil {
		t.Fatal(err)
	}
	var routeChildren []*data.StructValue
	{
		r, errs := testConverter.ConvertToGolang(infraRoot.Children[0], model.ChildResourceReferenceBindingType())
		if errs != nil {
			t.Fatal(errs[0])
		}
		routeChildren = r.(model.ChildResourceReference).Children
	}
	wrap := func(id, target string, children []*data.StructValue) []*data.StructValue {
		v, errs := testConverter.ConvertToVapi(model.ChildResourceReference{ResourceType: "ChildResourceReference", Id: ptr(id), TargetType: ptr(target), Children: children},
			model.ChildResourceReferenceBindingType())
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		return []*data.StructValue{v.(*data.StructValue)}
	}
	orgRoot := model.OrgRoot{ResourceType: ptr("OrgRoot"), Children: wrap("default", "Org", wrap("tenant-a", "Project", wrap("vpc-pods", "Vpc", routeChildren)))}
	sent = sdkWireWith(t, &path, func(conn vapiclient.Connector) error { return nsxpolicy.NewOrgRootClient(conn).Patch(orgRoot, nil) })
	if !bytes.Equal(got, sent) || path != vpc.hierarchicalPath() {
		t.Errorf("VPC: body or path differs from the SDK's:\n got %s %s\nwant %s %s", vpc.hierarchicalPath(), got, path, sent)
	}
	checkGolden(t, "vpc", got)
}

var testConverter = bindings.NewTypeConverter()

// sdkModel is the model.Infra the client sent through the SDK's generic
// bindings before it encoded bodies itself.
func sdkModel(t testing.TB, tier1ID string, upserts []Route, deletes []string) model.Infra {
	t.Helper()
	var children []*data.StructValue
	add := func(r model.StaticRoutes, del bool) {
		child := model.ChildStaticRoutes{ResourceType: "ChildStaticRoutes", StaticRoutes: &r, MarkedForDelete: &del}
		v, errs := testConverter.ConvertToVapi(child, model.ChildStaticRoutesBindingType())
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		children = append(children, v.(*data.StructValue))
	}
	for _, id := range deletes {
		add(model.StaticRoutes{Id: ptr(id), ResourceType: ptr("StaticRoutes")}, true)
	}
	for _, r := range upserts {
		add(toModel(r), false)
	}
	ref := model.ChildResourceReference{ResourceType: "ChildResourceReference", Id: ptr(tier1ID), TargetType: ptr("Tier1"), Children: children}
	v, errs := testConverter.ConvertToVapi(ref, model.ChildResourceReferenceBindingType())
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	return model.Infra{ResourceType: ptr("Infra"), Children: []*data.StructValue{v.(*data.StructValue)}}
}

// toModel is a route as the client put it into the SDK's model.
func toModel(r Route) model.StaticRoutes {
	m := model.StaticRoutes{Id: ptr(r.ID), ResourceType: ptr("StaticRoutes"), Network: ptr(r.Network)}
	if r.DisplayName != "" {
		m.DisplayName = ptr(r.DisplayName)
	}
	if r.Description != "" {
		m.Description = ptr(r.Description)
	}
	m.NextHops = make([]model.RouterNexthop, len(r.NextHops))
	for i, h := range r.NextHops {
		m.NextHops[i] = model.RouterNexthop{IpAddress: ptr(h.IP)}
		if h.AdminDistance > 0 {
			m.NextHops[i].AdminDistance = ptr(h.AdminDistance)
		}
	}
	for _, t := range r.Tags {
		m.Tags = append(m.Tags, model.Tag{Scope: ptr(t.Scope), Tag: ptr(t.Tag)})
	}
	return m
}

// sdkWire is the body the SDK's InfraClient.Patch sends for root.
func sdkWire(t *testing.T, root model.Infra) []byte {
	t.Helper()
	var path string
	return sdkWireWith(t, &path, func(conn vapiclient.Connector) error { return nsxpolicy.NewInfraClient(conn).Patch(root, nil) })
}

// sdkWireWith is the body an SDK call sends; *path is the URL path it sent it to.
func sdkWireWith(t *testing.T, path *string, call func(vapiclient.Connector) error) []byte {
	t.Helper()
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		*path = r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}")) //nolint:errcheck // test server
	}))
	defer srv.Close()
	conn := vapiclient.NewConnector(srv.URL, vapiclient.UsingRest(nil), vapiclient.WithHttpClient(srv.Client()))
	if err := call(conn); err != nil {
		t.Fatal(err)
	}
	return body
}

// patchedRoutes is a hierarchical body in the SDK's models, flattened for comparison.
type patchedRoutes struct {
	Root     model.Infra
	Ref      model.ChildResourceReference
	Children []model.ChildStaticRoutes
}

func flatten(t *testing.T, root model.Infra) patchedRoutes {
	t.Helper()
	out := patchedRoutes{Root: root}
	if len(root.Children) != 1 {
		t.Fatalf("%d children of Infra, want 1", len(root.Children))
	}
	ref, err := testConverter.ConvertToGolang(root.Children[0], model.ChildResourceReferenceBindingType())
	if err != nil {
		t.Fatal(err)
	}
	out.Ref = ref.(model.ChildResourceReference)
	for _, c := range out.Ref.Children {
		child, err := testConverter.ConvertToGolang(c, model.ChildStaticRoutesBindingType())
		if err != nil {
			t.Fatal(err)
		}
		out.Children = append(out.Children, child.(model.ChildStaticRoutes))
	}
	out.Root.Children, out.Ref.Children = nil, nil // compared through Ref and Children
	return out
}

// decodeWithSDK reads a body as the SDK reads NSX JSON: its JSON decoder
// (numbers kept as numbers) into data values, then its bindings.
func decodeWithSDK(t *testing.T, body []byte) patchedRoutes {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	dv, err := cleanjson.NewJsonToDataValueDecoder().Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	root, errs := testConverter.ConvertToGolang(dv, model.InfraBindingType())
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	return flatten(t, root.(model.Infra))
}

// TestListPagesMatchSDK: a page of the static route list, or of the
// forwarding table, reads through the client's own decoding as it read
// through the SDK's bindings (model.StaticRoutesListResult and
// model.RoutingTableListResult, then the fields the client takes): the same
// routes, counts and cursors, and a failure where the SDK failed.
// testdata/list and testdata/forwarding hold NSX-shaped pages (every field
// NSX sends), nulls, and answers of the wrong type.
func TestListPagesMatchSDK(t *testing.T) {
	decoders := []struct {
		dir      string
		own, sdk func([]byte) (any, error)
	}{
		{"list", func(b []byte) (any, error) {
			var page staticRoutesPage
			if err := json.Unmarshal(b, &page); err != nil {
				return nil, err
			}
			out := listed{Count: page.ResultCount, Cursor: page.Cursor}
			for _, r := range page.Results {
				out.Routes = append(out.Routes, r.route())
			}
			return out, nil
		}, listWithSDK},
		{"forwarding", func(b []byte) (any, error) {
			var page forwardingPage
			if err := json.Unmarshal(b, &page); err != nil {
				return nil, err
			}
			out := forwarding{Count: page.ResultCount, Cursor: page.Cursor, NoResults: page.Results == nil}
			for _, e := range page.Results {
				table := edgeTable{Edge: e.EdgeNode, Status: e.Status, Error: e.ErrorMessage}
				for _, r := range e.RouteEntries {
					table.Entries = append(table.Entries, ForwardingEntry{Network: r.Network, NextHop: r.NextHop, RouteType: r.RouteType, EdgeNode: e.EdgeNode})
				}
				out.Tables = append(out.Tables, table)
			}
			return out, nil
		}, forwardingWithSDK},
	}
	for _, d := range decoders {
		files, err := filepath.Glob(filepath.Join("testdata", d.dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no testdata/%s/*.json: %v", d.dir, err)
		}
		for _, file := range files {
			t.Run(d.dir+"/"+strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
				body, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				want, wantErr := d.sdk(body)
				got, gotErr := d.own(body)
				if (gotErr != nil) != (wantErr != nil) {
					t.Fatalf("decoding failed: %v; through the SDK: %v", gotErr, wantErr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("decoded\n %+v\nthrough the SDK\n %+v", got, want)
				}
			})
		}
	}
}

// listed is what ListRoutes takes from a page.
type listed struct {
	Routes []Route
	Count  *int64
	Cursor string
}

// listWithSDK reads a page as the client did through the SDK.
func listWithSDK(body []byte) (any, error) {
	res, err := readWithSDK(body, model.StaticRoutesListResultBindingType())
	if err != nil {
		return nil, err
	}
	page := res.(model.StaticRoutesListResult)
	out := listed{Count: page.ResultCount, Cursor: deref(page.Cursor)}
	for _, m := range page.Results {
		out.Routes = append(out.Routes, fromModel(m))
	}
	return out, nil
}

// fromModel is a listed route as the client read it from the SDK's model.
func fromModel(m model.StaticRoutes) Route {
	r := Route{ID: deref(m.Id), DisplayName: deref(m.DisplayName), Description: deref(m.Description),
		Network: deref(m.Network), Path: deref(m.Path), Revision: deref(m.Revision)}
	if m.LastModifiedTime != nil {
		r.LastModified = time.UnixMilli(*m.LastModifiedTime)
	}
	for _, h := range m.NextHops {
		r.NextHops = append(r.NextHops, NextHop{IP: deref(h.IpAddress), AdminDistance: deref(h.AdminDistance)})
	}
	for _, t := range m.Tags {
		r.Tags = append(r.Tags, Tag{Scope: deref(t.Scope), Tag: deref(t.Tag)})
	}
	return r
}

// forwarding is what ForwardingTable takes from a page.
type forwarding struct {
	Tables    []edgeTable
	Count     *int64
	Cursor    *string
	NoResults bool
}

type edgeTable struct {
	Edge, Status, Error string
	Entries             []ForwardingEntry
}

// forwardingWithSDK reads a page as the client did through the SDK.
func forwardingWithSDK(body []byte) (any, error) {
	res, err := readWithSDK(body, model.RoutingTableListResultBindingType())
	if err != nil {
		return nil, err
	}
	page := res.(model.RoutingTableListResult)
	out := forwarding{Count: page.ResultCount, Cursor: page.Cursor, NoResults: page.Results == nil}
	for _, t := range page.Results {
		table := edgeTable{Edge: deref(t.EdgeNode), Status: deref(t.Status), Error: deref(t.ErrorMessage)}
		for _, e := range t.RouteEntries {
			table.Entries = append(table.Entries, ForwardingEntry{Network: deref(e.Network), NextHop: deref(e.NextHop), RouteType: deref(e.RouteType), EdgeNode: deref(t.EdgeNode)})
		}
		out.Tables = append(out.Tables, table)
	}
	return out, nil
}

// readWithSDK reads an answer as the SDK reads NSX JSON: its JSON decoder
// (numbers kept as numbers) into data values, then its bindings.
func readWithSDK(body []byte, typ bindings.BindingType) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	dv, err := cleanjson.NewJsonToDataValueDecoder().Decode(v)
	if err != nil {
		return nil, err
	}
	res, errs := testConverter.ConvertToGolang(dv, typ)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return res, nil
}

// TestCursorsReachNSXIntact: the cursor NSX hands out comes back to it
// unchanged, whatever it holds. The SDK sent '+', '&' and '=' in a cursor
// unescaped, so a cursor holding them came back as another cursor (a space,
// a cut, an extra parameter).
func TestCursorsReachNSXIntact(t *testing.T) {
	const cursor = "0036+a/b&c=d e%f"
	var mu sync.Mutex
	var got []url.Values
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") == "" {
			fmt.Fprintf(w, `{"results":[],"result_count":0,"cursor":%q}`, cursor)
			return
		}
		w.Write([]byte(`{"results":[],"result_count":0}`)) //nolint:errcheck // test server
	}))
	defer srv.Close()
	c, err := New(Config{Host: srv.URL, TLS: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"ListRoutes":      func() error { _, err := c.ListRoutes(context.Background(), Tier1Path("t1")); return err },
		"ForwardingTable": func() error { _, err := c.ForwardingTable(context.Background(), Tier1Path("t1")); return err },
	}
	for name, call := range calls {
		got = nil
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 || got[1].Get("cursor") != cursor || got[1].Get("page_size") != "1000" || len(got[1]) != len(got[0])+1 {
			t.Errorf("%s sent the queries %v; want page_size=1000, then the same with cursor %q", name, got, cursor)
		}
	}
}

func ptr[T any](v T) *T { return &v }
