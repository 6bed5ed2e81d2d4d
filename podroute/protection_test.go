package podroute

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx"
)

// protectedNSX refuses every change as NSX refuses a change of objects a
// protected principal identity created (HTTP 400, error_code 289).
type protectedNSX struct {
	mu      sync.Mutex
	applies int
	by      string // creating identity named in the refusal; "" names none
}

func (f *protectedNSX) ListRoutes(context.Context, nsx.RouterPath) ([]nsx.Route, error) {
	return nil, nil
}

func (f *protectedNSX) Apply(_ context.Context, _ nsx.RouterPath, ups []nsx.Route, dels []string) error {
	f.mu.Lock()
	f.applies++
	f.mu.Unlock()
	msg := "Principal 'admin' with role '[enterprise_admin]' attempts to delete or modify an object of type StaticRoutes it doesn't own."
	if f.by != "" {
		msg += " (createUser=" + f.by + ", allowOverwrite=null)"
	}
	return &nsx.BatchError{Upserts: ups, Deletes: dels, Err: &nsx.APIError{StatusCode: 400, ErrorCode: nsx.ErrorCodeProtected,
		RelatedErrors: []nsx.RelatedError{{ErrorCode: nsx.ErrorCodeProtected, Message: msg}}}}
}

// A protection refusal is not bad input: the controller does not bisect the
// batch (one call per route, all refused alike), and its error names the
// creating identity and the fix.
func TestProtectionRefusalIsNotBisected(t *testing.T) {
	for _, tc := range []struct {
		by, want string
	}{
		{"t1route-old-pi", `principal identity "t1route-old-pi"`},
		{"", "NSX did not say which"},
	} {
		t.Run(tc.by, func(t *testing.T) {
			f := &protectedNSX{by: tc.by}
			c := newTestController(t, Config{Identity: us, Router: nsx.Tier1Path("t1"), ClusterCIDRs: v4, Window: time.Millisecond}, fakeNodes(0), f, nil)
			nodes := make([]Node, 64)
			for i := range nodes {
				nodes[i] = FromNode(testNode(i))
			}
			desired, _ := Desired(us, v4, nodes)
			var ups []nsx.Route
			for _, r := range desired {
				ups = append(ups, r)
			}
			err := c.apply(context.Background(), Changes{Upserts: ups})
			if !nsx.IsProtected(err) {
				t.Fatalf("apply = %v; want the protection refusal", err)
			}
			var be *nsx.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("apply = %v; the NSX error must stay reachable with errors.As", err)
			}
			if f.applies != 1 {
				t.Fatalf("%d Apply calls; a protection refusal must not be bisected", f.applies)
			}
			for _, s := range []string{tc.want, "X-Allow-Overwrite", "fix:"} {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// ExplainProtected leaves any other error as it is.
func TestExplainProtectedOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("boom"), &nsx.APIError{StatusCode: 400, ErrorCode: 255, Message: "bad"}} {
		if got := ExplainProtected(err, "fix"); got != err {
			t.Fatalf("ExplainProtected(%v) = %v", err, got)
		}
	}
}
