package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/nsx/nsxsim"
)

// TestVMCErrorMessageIsSanitised: CSP's error message is text from the
// network that ends up in logs and events: it is cut to one printable line
// of bounded length, as NSX's error bodies are.
func TestVMCErrorMessageIsSanitised(t *testing.T) {
	hostile := "invalid_grant\n2026-11-30T12:00:00Z\tINFO\tforged log line\r\x1b[2J\x1b[31mred\x00" + strings.Repeat("x", 5000)
	for _, status := range []int{http.StatusBadRequest, http.StatusServiceUnavailable} {
		csp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "message": hostile})
		}))
		defer csp.Close()
		sim := nsxsim.StartTest(t, nsxsim.Options{})
		authn := &auth.CSPToken{AuthHost: csp.Listener.Addr().String(), APIToken: "some-token", Client: csp.Client()}
		c := newClient(t, sim, clientOpts{authn: authn, limits: nsx.Limits{MaxRetries: -1}})
		_, err := c.Tier1(context.Background(), t1Path)
		if err == nil {
			t.Fatalf("HTTP %d: the exchange succeeded", status)
		}
		for _, text := range []string{err.Error(), nsx.Explain(err)} {
			if strings.ContainsAny(text, "\n\r\t\x1b\x00") || len(text) > 1200 || !strings.Contains(text, "invalid_grant") {
				t.Errorf("HTTP %d: %q (%d bytes) is not one bounded printable line holding CSP's message", status, text, len(text))
			}
		}
	}
}
