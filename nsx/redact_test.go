package nsx

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// Credentials in the forms servers and proxies echo them are redacted; the
// rest of the message, and words that only look alike, are kept.
func TestRedact(t *testing.T) {
	const (
		basic  = "YWRtaW46UGE1NS13b3JkLVMzY3JldA==" // admin:Pa55-word-S3cret
		jwt    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
		cookie = "4F2A9C1B7E3D5A6F8B0C"
		xsrf   = "8d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
		token  = "Xk7yP2qR9sT4uV6wZ1aB3cD5eF8gH0iJ"
	)
	secrets := []string{basic, jwt, cookie, xsrf, token, "Pa55-word-S3cret", "admin:Pa55-word-S3cret"}
	cases := []struct {
		name, in string
		keep     []string // what must still be there
		known    []string
	}{
		{"header lines", "Bad request. Authorization: Basic " + basic + "\r\nCookie: JSESSIONID=" + cookie + "; Path=/\r\nX-XSRF-TOKEN: " + xsrf + "\r\ncsp-auth-token: " + jwt,
			[]string{"Bad request.", "Authorization: ", "Cookie: ", "X-XSRF-TOKEN: ", "csp-auth-token: "}, nil},
		{"a Go header dump", "headers received: map[Authorization:[Remote " + basic + "] Cookie:[JSESSIONID=" + cookie + "] Csp-Auth-Token:[" + jwt + "] X-Xsrf-Token:[" + xsrf + "]]",
			[]string{"headers received: map[Authorization:[", "Cookie:["}, nil},
		{"JSON headers", `{"Authorization":["Basic ` + basic + `"],"Cookie":["JSESSIONID=` + cookie + `"],"X-Xsrf-Token":["` + xsrf + `"],"Csp-Auth-Token":["` + jwt + `"]}`,
			[]string{`{"Authorization":["`, `"Cookie":["`}, nil},
		{"a Java map", "{authorization=Bearer " + token + ", cookie=JSESSIONID=" + cookie + ", x-xsrf-token=" + xsrf + "}", []string{"{authorization=", "cookie="}, nil},
		{"query parameters", "GET /api?refresh_token=" + token + "&page_size=10&access_token=" + token + "&password=Pa55-word-S3cret failed", []string{"GET /api?refresh_token=", "&page_size=10&", "failed"}, nil},
		{"a form body", "body j_username=admin&j_password=Pa55-word-S3cret", []string{"j_username=admin&j_password="}, nil},
		{"a bare bearer token", "token rejected: Bearer " + token, []string{"token rejected: Bearer "}, nil},
		{"a bare basic credential", "could not parse Basic " + basic + " as expected", []string{"could not parse Basic ", " as expected"}, nil},
		{"a bare JWT", "the access token " + jwt + " has expired", []string{"the access token ", " has expired"}, nil},
		{"known secrets anywhere", "the value " + token + " and " + cookie + " are wrong", []string{"the value ", " are wrong"}, []string{token, cookie}},
		{"a known password, URL-encoded", "body j_user=admin&pw=p%40ss%21word", []string{"j_user=admin"}, []string{"p@ss!word"}},
		{"a known secret in base64", "echo " + base64.StdEncoding.EncodeToString([]byte("admin:hunter22")), []string{"echo "}, []string{"admin:hunter22"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.in, tc.known...)
			for _, s := range append(append([]string{}, secrets...), tc.known...) {
				if strings.Contains(got, s) {
					t.Errorf("%q left in %q", s, got)
				}
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
			if !strings.Contains(got, Redacted) {
				t.Errorf("nothing marked redacted in %q", got)
			}
			if again := Redact(got, tc.known...); again != got {
				t.Errorf("not idempotent: %q then %q", got, again)
			}
		})
	}
	for _, plain := range []string{
		"Basic authentication failed for user admin",
		"The credentials were incorrect or the account specified has been locked.",
		"Token expired; log in again",
		"The path=[/infra/tier-1s/t1/static-routes/t1route-uid-100.96.1.0_24] is invalid",
		"Client 'admin' exceeded request rate of 100 per second.",
		"Authorization failed: the user lacks the role",
	} {
		if got := Redact(plain, "abc"); got != plain {
			t.Errorf("Redact(%q) = %q: an ordinary message changed", plain, got)
		}
	}
}

// What a request carries is what an echo can show: each credential header,
// its token, cookie values, and the user:password inside Basic/Remote.
func TestSentSecrets(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Remote "+base64.StdEncoding.EncodeToString([]byte("bob@corp:vIDM-pw-1")))
	h.Set("Cookie", "JSESSIONID=ABCDEF0123; other=xyz")
	h.Set("X-XSRF-TOKEN", "xsrf-123456")
	h.Set("csp-auth-token", "access-token-7890")
	got := strings.Join(sentSecrets(h), "\n")
	for _, want := range []string{"bob@corp:vIDM-pw-1", "vIDM-pw-1", "ABCDEF0123", "xsrf-123456", "access-token-7890"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q not among the secrets sent:\n%s", want, got)
		}
	}
}

// An NSX error body echoing the request is redacted field by field, with
// the secrets the request carried, before anything is cut short.
func TestDecodeAPIErrorRedacts(t *testing.T) {
	const secret = "s3cr3t-cookie-value-0123456789"
	body := `{"error_code":100,"module_name":"x","error_message":"cookie JSESSIONID is ` + secret + `","details":"` +
		strings.Repeat("x", 1990) + ` Authorization: Basic YWRtaW46cGFzc3dvcmQ=","related_errors":[{"error_code":1,"error_message":"seen ` + secret + `"}]}`
	e := decodeAPIError(400, "application/json", []byte(body), secret)
	all := e.Error() + e.Details + e.RelatedErrors[0].Message
	if strings.Contains(all, secret) || strings.Contains(all, "YWRtaW46") {
		t.Fatalf("a secret survives: %s", all)
	}
	html := "<html><body>401 for Authorization: Bearer " + secret + " at proxy</body></html>"
	e = decodeAPIError(401, "text/html", []byte(html))
	if strings.Contains(e.Error(), secret[:10]) {
		t.Fatalf("a proxy's page leaks the token: %s", e.Error())
	}
}
