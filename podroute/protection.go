package podroute

import (
	"fmt"

	"github.com/t1route/t1route/nsx"
)

// NSX protects what a protected principal identity created (the vSphere
// cloud provider's routes; t1route's own when its controller authenticates
// with a client certificate): only that identity, or an enterprise admin
// sending X-Allow-Overwrite, may change or delete it. A refusal is neither
// bad input nor temporary: it names who may act, and the fix.

// ExplainProtected returns err, if it is NSX's protection refusal, wrapped
// with the identity that created the routes and fix (what the user can do);
// any other error is returned as it is.
func ExplainProtected(err error, fix string) error {
	if !nsx.IsProtected(err) {
		return err
	}
	by := "a protected principal identity (NSX did not say which)"
	if name := nsx.ProtectedBy(err); name != "" {
		by = fmt.Sprintf("the protected principal identity %q", name)
	}
	return &ProtectedError{Err: err, By: by, Fix: fix}
}

// ProtectedError is NSX's protection refusal with who created the objects
// and what the user can do. Commands print Explain, which keeps both: the
// generic explanation of the NSX error underneath would lose them.
type ProtectedError struct {
	Err     error
	By, Fix string
}

func (e *ProtectedError) Error() string { return e.Err.Error() + "; " + e.Explain() }
func (e *ProtectedError) Unwrap() error { return e.Err }

// Explain says in one line why NSX refused and how to fix it.
func (e *ProtectedError) Explain() string {
	return fmt.Sprintf("NSX protects these routes because %s created them: only that identity, or an enterprise admin sending X-Allow-Overwrite: true, may change or delete them; fix: %s", e.By, e.Fix)
}
