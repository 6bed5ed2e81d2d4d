package nsx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	vapiclient "github.com/vmware/vsphere-automation-sdk-go/runtime/protocol/client"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/infra/realized_state"
	"github.com/vmware/vsphere-automation-sdk-go/services/nsxt/model"
	projectinfra "github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/infra"
	projectrealized "github.com/vmware/vsphere-automation-sdk-go/services/nsxt/orgs/projects/infra/realized_state"
)

// Tag is an NSX tag.
type Tag struct {
	Scope, Tag string
}

// NextHop is one next hop of a static route.
type NextHop struct {
	IP            string
	AdminDistance int64 // 1-255; 0 means NSX's default of 1
}

// Route is a Tier-1 static route as t1route reads and writes it. Network and
// next hops are kept as NSX holds them: routes t1route does not own may carry
// anything, and are never rewritten.
type Route struct {
	ID          string
	DisplayName string
	Description string
	Network     string
	NextHops    []NextHop
	Tags        []Tag
	// Read-only, filled by ListRoutes.
	Path     string
	Revision int64
	// LastModified is NSX's _last_modified_time (zero if not given).
	LastModified time.Time
}

// Tier1 is what t1route needs to know of a Tier-1 gateway.
type Tier1 struct {
	ID, Path, DisplayName   string
	RouteAdvertisementTypes []string
}

// AdvertisesStaticRoutes reports whether the Tier-1 advertises its static
// routes to the Tier-0; without it pod routes never leave the Tier-1.
func (t Tier1) AdvertisesStaticRoutes() bool {
	return slices.Contains(t.RouteAdvertisementTypes, model.Tier1_ROUTE_ADVERTISEMENT_TYPES_STATIC_ROUTES)
}

// MaxIDLength is the longest policy object id t1route accepts.
const MaxIDLength = 255

// Tier1ID returns the id of a Tier-1 policy path, /infra/tier-1s/<id>.
//
// The id rule: 1 to 255 characters, each an ASCII letter, digit, '-', '.',
// '_' or '~' (RFC 3986's unreserved set), and not "." or "..". NSX documents
// no character set for policy ids (its API types them as plain strings, and
// accepts nearly anything); ids NSX's UI and tools create (t1-prod, cgw,
// T1_Gateway, a UUID) fit this rule, and 255 is the longest display name
// NSX allows, from which its UI derives ids. The rule is the set that needs
// no escaping in a URL path: an id outside it would reach NSX rewritten —
// "." and ".." are removed from paths by URL normalisation (a request for
// the Tier-1 "." became the list of all Tier-1s) — or carries quotes,
// spaces or control characters into logs and the UI.
func Tier1ID(path string) (string, error) {
	const prefix = "/infra/tier-1s/"
	id, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", fmt.Errorf("tier-1 path %q must be of the form %s<id>, e.g. /infra/tier-1s/t1-pods (copy it from the Tier-1's \"Copy path\" in the NSX UI)", Sanitize(path, 80), prefix)
	}
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("tier-1 path %s<id>: %w", prefix, err)
	}
	return id, nil
}

// checkID checks a policy object id against t1route's rule (see Tier1ID).
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("the id is empty")
	case len(id) > MaxIDLength:
		return fmt.Errorf("the id is %d characters long; NSX ids t1route accepts have at most %d", len(id), MaxIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("the id %q is a path segment, not an id", id)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !isIDChar(b) {
			what := fmt.Sprintf("%q", b)
			if b >= 0x80 {
				what = "a non-ASCII character"
			}
			return fmt.Errorf("the id %q has %s at position %d; ids are made of ASCII letters, digits, '-', '.', '_' and '~'", Sanitize(id, 80), what, i+1)
		}
	}
	return nil
}

func isIDChar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~'
}

// Tier1 gets a Tier-1 (in the default space or in a project) by policy path.
func (c *Client) Tier1(ctx context.Context, p RouterPath) (Tier1, error) {
	if err := p.checked(); err != nil {
		return Tier1{}, err
	}
	if p.Kind() == VPC {
		return Tier1{}, fmt.Errorf("nsx: %s is a VPC, not a Tier-1 gateway", p)
	}
	var t model.Tier1
	err := c.call(ctx, "get tier-1", "GET", p.apiPath(), func(conn vapiclient.Connector) error {
		var err error
		if p.Kind() == ProjectTier1 {
			t, err = projectinfra.NewTier1sClient(conn).Get(p.Org(), p.Project(), p.ID())
		} else {
			t, err = infra.NewTier1sClient(conn).Get(p.ID())
		}
		return err
	})
	if err != nil {
		return Tier1{}, err
	}
	return Tier1{ID: p.ID(), Path: deref(t.Path), DisplayName: deref(t.DisplayName), RouteAdvertisementTypes: t.RouteAdvertisementTypes}, nil
}

// ListRoutes returns every static route of a Tier-1 or VPC, following the
// cursor across pages.
func (c *Client) ListRoutes(ctx context.Context, router RouterPath) ([]Route, error) {
	if err := router.checked(); err != nil {
		return nil, err
	}
	path := router.apiPath() + "/static-routes"
	var out []Route
	cursor := ""
	for page := 1; ; page++ {
		query := url.Values{"page_size": {strconv.FormatInt(c.pageSize, 10)}}
		if cursor != "" {
			query.Set("cursor", cursor)
		}
		var res staticRoutesPage
		err := c.run(ctx, "list static routes", "GET", path, func(ctx context.Context) error {
			return c.send(ctx, "GET", path, query, nil, &res)
		})
		if err != nil {
			return nil, err
		}
		if res.ResultCount == nil {
			// Every NSX list answer has result_count; without it this is not
			// a list (an error body sent with 200, say), and an empty list
			// taken from it would hide every route.
			return nil, fmt.Errorf("nsx: list static routes of %s: NSX answered 200 with a body that is not a list (no result_count); not trusting it", router)
		}
		if out == nil {
			out = make([]Route, 0, max(0, min(*res.ResultCount, 1<<20))) // result_count is only a hint: never trust it for a size
		}
		for _, r := range res.Results {
			if r.ID == "" {
				return nil, fmt.Errorf("nsx: list static routes of %s: NSX listed a route without an id (page %d); not trusting the answer", router, page)
			}
			out = append(out, r.route())
		}
		if res.Cursor == "" {
			return out, nil
		}
		if res.Cursor == cursor {
			return nil, fmt.Errorf("nsx: list static routes of %s: NSX returned the same cursor twice (page %d); stopping rather than looping", router, page)
		}
		cursor = res.Cursor
	}
}

// BatchError reports a hierarchical call that NSX refused or that could not
// be made. The batches before it were applied; this one was not (NSX applies
// a hierarchical call atomically), nor any after it.
type BatchError struct {
	Applied int      // routes applied by earlier batches
	Upserts []Route  // this batch's upserts
	Deletes []string // this batch's deletes
	Err     error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("applying a batch of %d upserts and %d deletes (%d routes applied before it): %v", len(e.Upserts), len(e.Deletes), e.Applied, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Apply creates or replaces upserts and deletes the routes with IDs deletes
// on a Tier-1 or VPC, through the hierarchical API in as few calls as possible
// (BatchSize routes each, deletes first). Idempotent: deleting an absent
// route is not an error. On failure it returns a *BatchError.
func (c *Client) Apply(ctx context.Context, router RouterPath, upserts []Route, deletes []string) error {
	if err := router.checked(); err != nil {
		return err
	}
	applied := 0
	for len(upserts)+len(deletes) > 0 {
		nd := min(len(deletes), c.batchSize)
		nu := min(len(upserts), c.batchSize-nd)
		batchDel, batchUp := deletes[:nd], upserts[:nu]
		if err := c.applyBatch(ctx, router, batchUp, batchDel); err != nil {
			return &BatchError{Applied: applied, Upserts: batchUp, Deletes: batchDel, Err: err}
		}
		applied += nd + nu
		deletes, upserts = deletes[nd:], upserts[nu:]
	}
	return nil
}

// applyBatch sends one hierarchical PATCH (router.hierarchicalPath: the
// default space's /infra, a project's infra, or the org root for a VPC), its
// body encoded by encodeRouterPatch (wire.go) rather than the SDK.
func (c *Client) applyBatch(ctx context.Context, router RouterPath, upserts []Route, deletes []string) error {
	body, err := encodeRouterPatch(router, upserts, deletes)
	if err != nil {
		return err
	}
	path := router.hierarchicalPath()
	return c.run(ctx, "apply static routes", "PATCH", path, func(ctx context.Context) error {
		return c.send(ctx, "PATCH", path, nil, body, nil)
	})
}

// Realization states of a policy object.
const (
	StateRealized   = "REALIZED"
	StateUnrealized = "UNREALIZED"
	StateError      = "ERROR"
	StateUnknown    = "UNAVAILABLE"
)

// Realization is the realized state of a policy object.
type Realization struct {
	State string // one of the State constants
	Error string // NSX's runtime or publish error, when State is ERROR
}

// Realized reads the realized state of a policy path (a route's Path), from
// the realized-state endpoint of the path's space: a project's own for a
// path inside a project (/orgs/<org>/projects/<p>/...), /infra's otherwise.
// An object with several realized entities is realized only when all are;
// any error wins.
func (c *Client) Realized(ctx context.Context, path string) (Realization, error) {
	org, project, inProject := projectOf(path)
	endpoint := policyAPI + "/infra/realized-state/realized-entities"
	if inProject {
		endpoint = policyAPI + "/orgs/" + org + "/projects/" + project + "/infra/realized-state/realized-entities"
	}
	var res model.GenericPolicyRealizedResourceListResult
	err := c.call(ctx, "get realized state", "GET", endpoint, func(conn vapiclient.Connector) error {
		var err error
		if inProject {
			res, err = projectrealized.NewRealizedEntitiesClient(conn).List(org, project, path, nil)
		} else {
			res, err = realized_state.NewRealizedEntitiesClient(conn).List(path, nil)
		}
		return err
	})
	if err != nil {
		return Realization{}, err
	}
	if len(res.Results) == 0 {
		return Realization{State: StateUnknown}, nil
	}
	out := Realization{State: StateRealized}
	for _, e := range res.Results {
		switch s := deref(e.State); s {
		case StateRealized:
		case StateError:
			msg := deref(e.RuntimeError)
			if msg == "" {
				msg = deref(e.PublishStatusError)
			}
			return Realization{State: StateError, Error: msg}, nil
		default:
			out.State = StateUnrealized
		}
	}
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// projectOf reads the org and project of a policy path inside a project
// (/orgs/<org>/projects/<p>/...); ok is false for any other path, and for
// ids that break the id rule (they would not reach NSX as written).
func projectOf(path string) (org, project string, ok bool) {
	seg := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 5)
	if len(seg) < 5 || seg[0] != "orgs" || seg[2] != "projects" || checkID(seg[1]) != nil || checkID(seg[3]) != nil {
		return "", "", false
	}
	return seg[1], seg[3], true
}
