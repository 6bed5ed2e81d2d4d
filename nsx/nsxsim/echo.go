package nsxsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// echoRequest answers r with an error that quotes the request, as some
// managers, load balancers and proxies do ("invalid header", a dump of
// what they received): the request line with its query, every header
// (Authorization, Cookie, X-XSRF-TOKEN, csp-auth-token included) in the
// forms such dumps take (a Go map, header lines, JSON), and a form body
// (the session login's j_password, the token exchange's refresh_token). A
// client must never pass any of it on. The CSP endpoint answers in CSP's
// {"message": ...} form, the others in NSX's error body.
func echoRequest(w http.ResponseWriter, r *http.Request, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	var form string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 2<<10))
		form = string(b)
	}
	var lines []string
	for name, values := range r.Header {
		for _, v := range values {
			lines = append(lines, name+": "+v)
		}
	}
	sort.Strings(lines)
	headersJSON, _ := json.Marshal(r.Header)
	request := fmt.Sprintf("%s %s", r.Method, r.URL.RequestURI())
	if r.URL.Path == cspAuthorizePath {
		writeJSON(w, status, map[string]string{"message": fmt.Sprintf("invalid request %s with headers %v and body %s", request, r.Header, form)})
		return
	}
	body := apiErrorBody{
		HTTPStatus: strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")),
		ErrorCode:  CodeInvalid, ModuleName: "common-services",
		ErrorMessage: fmt.Sprintf("Invalid request %s; headers received: %v", request, r.Header),
		Details:      strings.Join(lines, "\n"),
		RelatedErrors: []apiErrorBody{
			{ErrorCode: CodeInvalid, ErrorMessage: "request headers " + string(headersJSON)},
			{ErrorCode: CodeInvalid, ErrorMessage: "request body " + form},
		},
	}
	writeJSON(w, status, body)
}
