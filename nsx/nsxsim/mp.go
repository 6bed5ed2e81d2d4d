package nsxsim

import (
	"net/http"
	"strings"
)

// Management Plane API and the authentication endpoints.

func (s *Simulator) nodeProperties(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"resource_type":               "NodeProperties",
		"product_version":             s.opts.Version,
		"node_version":                s.opts.Version,
		"hostname":                    "nsxsim",
		"fully_qualified_domain_name": "nsxsim.local",
		"kernel_version":              "nsxsim",
		"system_time":                 s.opts.Now().UnixMilli(),
	})
}

func (s *Simulator) clusterStatusHandler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status := s.clusterStatus
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_id":              "00000000-0000-4000-8000-00000000c1a5",
		"mgmt_cluster_status":     map[string]any{"status": status},
		"control_cluster_status":  map[string]any{"status": status},
		"detailed_cluster_status": map[string]any{"overall_status": status, "cluster_id": "00000000-0000-4000-8000-00000000c1a5"},
	})
}

// sessionCreate is NSX's form login: j_username and j_password, answered with
// a JSESSIONID cookie and an X-XSRF-TOKEN header that later calls send back.
func (s *Simulator) sessionCreate(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		invalid(w, "POST /api/session/create takes a form body (application/x-www-form-urlencoded) with j_username and j_password.")
		return
	}
	if err := r.ParseForm(); err != nil {
		invalid(w, "The form body could not be parsed.")
		return
	}
	id, xsrf, ok := s.auth.login(r.PostForm.Get("j_username"), r.PostForm.Get("j_password"))
	if !ok {
		writeError(w, http.StatusForbidden, CodeBadCredentials, badCredentials)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: "/", Secure: true, HttpOnly: true})
	w.Header().Set("X-XSRF-TOKEN", xsrf)
	w.WriteHeader(http.StatusOK)
}

func (s *Simulator) sessionDestroy(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("JSESSIONID"); err == nil {
		s.auth.logout(c.Value)
	}
	w.WriteHeader(http.StatusOK)
}

// cspAuthorize is VMware Cloud Services' token exchange: an API (refresh)
// token for a short-lived access token.
func (s *Simulator) cspAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("refresh_token") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "invalid_request: the body must be a form (application/x-www-form-urlencoded) with refresh_token"})
		return
	}
	tok, life, ok := s.auth.exchangeToken(r.PostForm.Get("refresh_token"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "invalid_grant: Invalid refresh token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": int(life.Seconds()), "scope": "ALL_PERMISSIONS",
	})
}
