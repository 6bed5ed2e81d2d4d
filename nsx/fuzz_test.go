package nsx

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// FuzzDecodeAPIError: whatever NSX or a proxy answers, decoding gives a
// bounded, printable error and never panics.
func FuzzDecodeAPIError(f *testing.F) {
	f.Add(429, "application/json", []byte(`{"httpStatus":"TOO_MANY_REQUESTS","error_code":102,"module_name":"common-services","error_message":"Client 'admin' exceeded request rate of 100 per second."}`))
	f.Add(400, "application/json", []byte(`{"error_code":255,"error_message":"bad","related_errors":[{"error_code":255,"error_message":"child"}]}`))
	f.Add(502, "text/html", []byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
	f.Add(500, "application/json", []byte(`{"httpStatus":"INTERNAL_SERVER_ERROR","error_co`))
	f.Add(404, "", []byte{})
	f.Add(403, "application/json", []byte(`{"error_code":"not a number","related_errors":{}}`))
	f.Add(200, "application/json", []byte("\x00\xff\xfe garbage \x1b[31m"))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		e := decodeAPIError(status, contentType, body)
		e.Op, e.Method, e.Path = "op", "GET", "/x"
		msg := e.Error()
		described := strings.Contains(msg, "not an NSX error")
		if !described && len(body) > 0 && !json.Valid(body) {
			t.Fatalf("a body that is not JSON was taken for NSX's: %q", msg)
		}
		if described && len(msg) > 600+len(contentType) {
			t.Fatalf("message of %d bytes for a non-NSX body", len(msg))
		}
		for _, text := range []string{e.Message, e.Details, e.ModuleName} {
			for _, r := range text {
				if !unicode.IsPrint(r) && !strings.ContainsRune(contentType, r) {
					t.Fatalf("unprintable rune %q in %q", r, text)
				}
			}
			if len(text) > 2100 {
				t.Fatalf("unbounded text of %d bytes", len(text))
			}
		}
	})
}
