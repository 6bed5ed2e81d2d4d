package nsxsim

import (
	"fmt"
	"net/http"
	"strings"
)

// Principal-identity protection, as NSX Manager applies it: an object created
// by a protected principal identity (a client-certificate identity registered
// with is_protected) may be changed or deleted only by that identity, or by an
// enterprise admin who sends X-Allow-Overwrite: true. Everyone else's change
// is refused with error_code 289. Each reader sees, in _protection, what it
// may do: NOT_PROTECTED (may change it), REQUIRE_OVERRIDE (an enterprise admin:
// only with the header) or PROTECTED (may not).
//
// NSX answers the refusal with HTTP 400 (httpStatus BAD_REQUEST), error_code
// 289, module common-services and the message "Principal 'admin' with role
// '[enterprise_admin]' attempts to delete or modify an object of type ... it
// doesn't own. (createUser=..., allowOverwrite=null)", as published answers of
// real managers show; the simulator answers the same.

// CodeProtected is NSX's error_code for a change to an object a protected
// principal identity owns.
const CodeProtected = 289

// Values of _protection.
const (
	NotProtected    = "NOT_PROTECTED"
	Protected       = "PROTECTED"
	RequireOverride = "REQUIRE_OVERRIDE"
)

// allowOverwriteHeader is the header with which an enterprise admin changes a
// protected object.
const allowOverwriteHeader = "X-Allow-Overwrite"

// caller is who made a request, as the policy layer needs it.
type caller struct {
	name      string // NSX user name, as recorded in _create_user
	principal bool   // authenticated by client certificate (a principal identity)
	// protectedPI: a principal identity registered as protected; what it
	// creates is protected.
	protectedPI bool
	// admin: an enterprise admin (the simulator has no RBAC: every user
	// authenticated by password, session or token is one). Principal
	// identities are not super users, whatever their role.
	admin bool
	// allowOverwrite is the X-Allow-Overwrite header as sent ("" when absent).
	allowOverwrite string
	// scope is the project (/orgs/<org>/projects/<p>) a project-scoped
	// user's role is limited to (Options.ProjectUsers); "" for none.
	scope string
}

// callerOf builds the caller from the authenticator's client identity.
func (s *Simulator) callerOf(id string, r *http.Request) caller {
	c := caller{name: id, admin: true, allowOverwrite: strings.ToLower(strings.TrimSpace(r.Header.Get(allowOverwriteHeader)))}
	if scope, ok := s.opts.ProjectUsers[id]; ok {
		// A project role: not an enterprise admin (NSX honours
		// X-Allow-Overwrite only from one), and limited to its project.
		c.admin, c.scope = false, scope
	}
	if cn, ok := strings.CutPrefix(id, principalPrefix); ok {
		c = caller{name: cn, principal: true, protectedPI: s.isProtectedPI(cn), allowOverwrite: c.allowOverwrite}
	}
	return c
}

func (s *Simulator) isProtectedPI(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.principals[name]
}

// protectionFor is _protection of an object as c sees it.
func protectionFor(c caller, m *meta) string {
	switch {
	case !m.protected, c.principal && c.name == m.CreateUser:
		return NotProtected
	case c.admin:
		return RequireOverride
	}
	return Protected
}

// mayChange says why c may not change or delete an object of type typ with
// system fields m, or nil if it may.
func mayChange(c caller, m *meta, typ string) *apiErr {
	switch protectionFor(c, m) {
	case NotProtected:
		return nil
	case RequireOverride:
		if c.allowOverwrite == "true" {
			return nil
		}
	}
	role := "enterprise_admin"
	overwrite := c.allowOverwrite
	if overwrite == "" {
		overwrite = "null"
	}
	return &apiErr{http.StatusBadRequest, CodeProtected,
		fmt.Sprintf("Principal '%s' with role '[%s]' attempts to delete or modify an object of type %s it doesn't own. (createUser=%s, allowOverwrite=%s)",
			c.name, role, typ, m.CreateUser, overwrite)}
}

// markCreated records, on an object c just created, whether it is protected.
func markCreated(c caller, m *meta) {
	m.protected = c.protectedPI
}

// validPrincipalName accepts names usable as a certificate CommonName and as
// the file names NAME.crt and NAME.key.
func validPrincipalName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("principal identity name %q must be 1 to 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("principal identity name %q may only hold letters, digits, '-', '_' and '.'", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("principal identity name %q is not a usable file name", name)
	}
	return nil
}
