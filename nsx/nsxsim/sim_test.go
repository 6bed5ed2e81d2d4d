package nsxsim_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// rawClient talks to the simulator over real TLS with basic auth.
type rawClient struct {
	t    *testing.T
	sim  *nsxsim.Simulator
	http *http.Client
	user string
	pass string
}

func newRaw(t *testing.T, opts nsxsim.Options) *rawClient {
	sim := nsxsim.StartTest(t, opts)
	u, p := sim.User()
	return &rawClient{t: t, sim: sim, user: u, pass: p, http: &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}},
	}}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) errorCode() int {
	if v, ok := a.body["error_code"].(float64); ok {
		return int(v)
	}
	return -1
}

func (c *rawClient) do(method, path, body string, hdr ...string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.sim.URL()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			c.t.Fatalf("%s %s: answer is not JSON (%d): %q", method, path, resp.StatusCode, raw)
		}
	}
	return a
}

const routesPath = "/policy/api/v1/infra/tier-1s/t1-routable/static-routes"

func routeBody(network, hop string) string {
	return fmt.Sprintf(`{"network":%q,"next_hops":[{"ip_address":%q}],"tags":[{"scope":"s","tag":"v"}]}`, network, hop)
}

func TestStaticRouteCRUD(t *testing.T) {
	c := newRaw(t, nsxsim.Options{})
	// The SDK sends a JSON body on GET and DELETE; NSX accepts it.
	if a := c.do("GET", routesPath+"/r1", "{}"); a.status != 404 || a.errorCode() != nsxsim.CodeNotFound {
		t.Fatalf("GET absent route = %d code %d, want 404/600", a.status, a.errorCode())
	}
	if a := c.do("PATCH", routesPath+"/r1", routeBody("100.96.1.0/24", "198.51.100.11")); a.status != 200 {
		t.Fatalf("PATCH create = %d %s", a.status, a.raw)
	}
	a := c.do("GET", routesPath+"/r1", "{}")
	if a.status != 200 || a.body["network"] != "100.96.1.0/24" || a.body["_revision"] != 0.0 {
		t.Fatalf("GET after create = %d %v", a.status, a.body)
	}
	for _, k := range []string{"path", "parent_path", "_create_time", "_last_modified_time", "unique_id"} {
		if a.body[k] == nil || a.body[k] == "" {
			t.Errorf("system field %s not filled: %v", k, a.body)
		}
	}
	if a.body["path"] != "/infra/tier-1s/t1-routable/static-routes/r1" || a.body["parent_path"] != "/infra/tier-1s/t1-routable" {
		t.Errorf("path/parent_path = %v / %v", a.body["path"], a.body["parent_path"])
	}
	// PATCH replaces and bumps _revision, whatever _revision it carries.
	c.do("PATCH", routesPath+"/r1", routeBody("100.96.1.0/24", "198.51.100.12"))
	if a := c.do("GET", routesPath+"/r1", ""); a.body["_revision"] != 1.0 {
		t.Fatalf("_revision after PATCH = %v, want 1", a.body["_revision"])
	}
	// PUT with a stale _revision is refused; with the current one it succeeds.
	stale := `{"network":"100.96.1.0/24","next_hops":[{"ip_address":"198.51.100.13"}],"_revision":0}`
	if a := c.do("PUT", routesPath+"/r1", stale); a.status != 412 {
		t.Fatalf("PUT stale = %d %s, want 412", a.status, a.raw)
	}
	fresh := strings.Replace(stale, `"_revision":0`, `"_revision":1`, 1)
	if a := c.do("PUT", routesPath+"/r1", fresh); a.status != 200 || a.body["_revision"] != 2.0 {
		t.Fatalf("PUT current = %d %v", a.status, a.body)
	}
	if a := c.do("DELETE", routesPath+"/r1", "{}"); a.status != 200 {
		t.Fatalf("DELETE = %d", a.status)
	}
	if a := c.do("DELETE", routesPath+"/r1", "{}"); a.status != 200 {
		t.Fatalf("DELETE absent = %d, want 200 (idempotent)", a.status)
	}
	if a := c.do("GET", "/policy/api/v1/infra/tier-1s/nope/static-routes", ""); a.status != 404 || a.errorCode() != 600 {
		t.Fatalf("list on unknown tier-1 = %d code %d", a.status, a.errorCode())
	}
	if a := c.do("POST", routesPath+"/r1", "{}"); a.status != 405 || a.errorCode() < 0 {
		t.Fatalf("POST on a route = %d %s, want NSX-shaped 405", a.status, a.raw)
	}
}

func TestBadInputIsNSX400(t *testing.T) {
	c := newRaw(t, nsxsim.Options{})
	cases := map[string]string{
		"malformed JSON":           `{"network":`,
		"not an object":            `[1,2]`,
		"network of wrong type":    `{"network":42,"next_hops":[{"ip_address":"198.51.100.1"}]}`,
		"next_hops of wrong type":  `{"network":"100.96.0.0/24","next_hops":"198.51.100.1"}`,
		"not a CIDR":               routeBody("100.96.0.300/24", "198.51.100.1"),
		"missing network":          `{"next_hops":[{"ip_address":"198.51.100.1"}]}`,
		"no next hop":              `{"network":"100.96.0.0/24","next_hops":[]}`,
		"next hop not an IP":       routeBody("100.96.0.0/24", "node-1"),
		"next hop of other family": routeBody("100.96.0.0/24", "2001:db8::1"),
		"admin distance too high":  `{"network":"100.96.0.0/24","next_hops":[{"ip_address":"198.51.100.1","admin_distance":300}]}`,
		"id mismatch":              `{"id":"other","network":"100.96.0.0/24","next_hops":[{"ip_address":"198.51.100.1"}]}`,
		"too many tags":            `{"network":"100.96.0.0/24","next_hops":[{"ip_address":"198.51.100.1"}],"tags":[` + strings.TrimSuffix(strings.Repeat(`{"scope":"a","tag":"b"},`, 31), ",") + `]}`,
		"scope too long":           `{"network":"100.96.0.0/24","next_hops":[{"ip_address":"198.51.100.1"}],"tags":[{"scope":"` + strings.Repeat("s", 129) + `","tag":"b"}]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			a := c.do("PATCH", routesPath+"/r1", body)
			if a.status != 400 || a.errorCode() != nsxsim.CodeInvalid || a.body["error_message"] == "" {
				t.Fatalf("= %d %s, want NSX 400 body", a.status, a.raw)
			}
		})
	}
	if n := len(c.sim.Routes("t1-routable")); n != 0 {
		t.Fatalf("%d routes stored after only bad input", n)
	}
	// Unknown fields are ignored, as NSX ignores read-only ones.
	if a := c.do("PATCH", routesPath+"/r1", `{"network":"100.96.0.0/24","next_hops":[{"ip_address":"198.51.100.1"}],"whatever":{"x":1}}`); a.status != 200 {
		t.Fatalf("unknown field = %d %s", a.status, a.raw)
	}
}

func TestListPagesWithCursor(t *testing.T) {
	c := newRaw(t, nsxsim.Options{RateLimit: -1})
	for i := range 25 {
		if err := c.sim.PutRoute("t1-routable", fmt.Sprintf("r%03d", i), fmt.Sprintf("100.96.%d.0/24", i), []string{"198.51.100.1"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		q := "?page_size=10"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		a := c.do("GET", routesPath+q, "")
		pages++
		if pages == 1 && a.body["result_count"] != 25.0 {
			t.Fatalf("result_count = %v", a.body["result_count"])
		}
		for _, r := range a.body["results"].([]any) {
			id := r.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("route %s served twice", id)
			}
			seen[id] = true
		}
		if pages == 1 {
			// A route created between pages, sorting before the cursor, does not shift the pages.
			c.sim.PutRoute("t1-routable", "r000a", "100.97.0.0/24", []string{"198.51.100.1"})
		}
		next, _ := a.body["cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || len(seen) != 25 {
		t.Fatalf("pages=%d routes=%d, want 3 pages and all 25 original routes", pages, len(seen))
	}
	if a := c.do("GET", routesPath+"?cursor=garbage", ""); a.status != 400 {
		t.Fatalf("bad cursor = %d", a.status)
	}
}

func hierBody(children ...string) string {
	return `{"resource_type":"Infra","children":[{"resource_type":"ChildResourceReference","id":"t1-routable","target_type":"Tier1","children":[` +
		strings.Join(children, ",") + `]}]}`
}

func child(id, network, hop string, del bool) string {
	return fmt.Sprintf(`{"resource_type":"ChildStaticRoutes","marked_for_delete":%t,"StaticRoutes":{"resource_type":"StaticRoutes","id":%q,"network":%q,"next_hops":[{"ip_address":%q}]}}`, del, id, network, hop)
}

func TestHierarchicalPatchIsAtomic(t *testing.T) {
	c := newRaw(t, nsxsim.Options{})
	c.sim.PutRoute("t1-routable", "old", "100.96.9.0/24", []string{"198.51.100.9"})
	good := hierBody(child("a", "100.96.1.0/24", "198.51.100.1", false), child("old", "", "", true), child("absent", "", "", true))
	if a := c.do("PATCH", "/policy/api/v1/infra", good); a.status != 200 {
		t.Fatalf("good batch = %d %s", a.status, a.raw)
	}
	routes := c.sim.Routes("t1-routable")
	if len(routes) != 1 || routes[0].ID != "a" {
		t.Fatalf("after good batch: %+v", routes)
	}
	// One bad child rejects everything and names the child.
	bad := hierBody(child("b", "100.96.2.0/24", "198.51.100.2", false), child("c", "100.96.3.0/24", "2001:db8::1", false), child("a", "", "", true))
	a := c.do("PATCH", "/policy/api/v1/infra", bad)
	if a.status != 400 || !strings.Contains(a.raw, "children[0].children[1]") || !strings.Contains(a.raw, "id=c") {
		t.Fatalf("bad batch = %d %s", a.status, a.raw)
	}
	if rel, _ := a.body["related_errors"].([]any); len(rel) != 1 {
		t.Fatalf("related_errors = %v", a.body["related_errors"])
	}
	if routes := c.sim.Routes("t1-routable"); len(routes) != 1 || routes[0].ID != "a" {
		t.Fatalf("a rejected batch changed state: %+v", routes)
	}
	// A reference to an unknown Tier-1 is a 404 naming it, with nothing changed.
	unknown := strings.Replace(good, `"id":"t1-routable"`, `"id":"nope"`, 1)
	if a := c.do("PATCH", "/policy/api/v1/infra", unknown); a.status != 404 || a.errorCode() != 600 {
		t.Fatalf("unknown tier-1 = %d %s", a.status, a.raw)
	}
	// ChildTier1 creates a Tier-1 with its routes in one call.
	ct1 := `{"resource_type":"Infra","children":[{"resource_type":"ChildTier1","Tier1":{"resource_type":"Tier1","id":"t1-new","route_advertisement_types":["TIER1_STATIC_ROUTES"],"children":[` +
		child("x", "100.96.5.0/24", "198.51.100.5", false) + `]}}]}`
	if a := c.do("PATCH", "/policy/api/v1/infra", ct1); a.status != 200 || len(c.sim.Routes("t1-new")) != 1 {
		t.Fatalf("ChildTier1 = %d %s", a.status, a.raw)
	}
}

func TestAuthModes(t *testing.T) {
	opts := nsxsim.Options{
		Users:              map[string]string{"admin": "s3cret!pw"},
		RemoteUsers:        map[string]string{"alice@corp": "vidm-pw"},
		RefreshTokens:      map[string]string{"vmc-api-token": "admin"},
		SessionIdleTimeout: time.Hour,
	}
	c := newRaw(t, opts)
	tier1 := "/policy/api/v1/infra/tier-1s/t1-routable"
	if a := c.do("GET", tier1, ""); a.status != 200 {
		t.Fatalf("basic = %d", a.status)
	}
	c.pass = "wrong"
	if a := c.do("GET", tier1, ""); a.status != 403 || a.errorCode() != 403 {
		t.Fatalf("wrong password = %d code %d, want 403/403", a.status, a.errorCode())
	}
	c.user = ""
	if a := c.do("GET", tier1, ""); a.status != 401 {
		t.Fatalf("no credentials = %d", a.status)
	}
	remote := "Remote " + b64("alice@corp:vidm-pw")
	if a := c.do("GET", tier1, "", "Authorization", remote); a.status != 200 {
		t.Fatalf("Remote = %d %s", a.status, a.raw)
	}
	if a := c.do("GET", tier1, "", "Authorization", "Basic "+b64("alice@corp:vidm-pw")); a.status != 403 {
		t.Fatalf("vIDM user with Basic = %d, want 403", a.status)
	}

	// Session: form login, then cookie + XSRF token, no Authorization.
	login := func(user, pass string) (cookie, xsrf string, status int) {
		req, _ := http.NewRequest("POST", c.sim.URL()+"/api/session/create",
			strings.NewReader(url.Values{"j_username": {user}, "j_password": {pass}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "JSESSIONID" {
				cookie = ck.Value
			}
		}
		return cookie, resp.Header.Get("X-XSRF-TOKEN"), resp.StatusCode
	}
	if _, _, st := login("admin", "wrong"); st != 403 {
		t.Fatalf("session login with wrong password = %d", st)
	}
	sid, xsrf, st := login("admin", "s3cret!pw")
	if st != 200 || sid == "" || xsrf == "" {
		t.Fatalf("session login = %d cookie=%t xsrf=%t", st, sid != "", xsrf != "")
	}
	if a := c.do("GET", tier1, "", "Cookie", "JSESSIONID="+sid, "X-XSRF-TOKEN", xsrf); a.status != 200 {
		t.Fatalf("session call = %d %s", a.status, a.raw)
	}
	if a := c.do("GET", tier1, "", "Cookie", "JSESSIONID="+sid); a.status != 403 || a.errorCode() != nsxsim.CodeSessionExpired {
		t.Fatalf("session without XSRF = %d code %d", a.status, a.errorCode())
	}
	c.sim.ExpireSessions()
	if a := c.do("GET", tier1, "", "Cookie", "JSESSIONID="+sid, "X-XSRF-TOKEN", xsrf); a.status != 403 || a.errorCode() != 98 {
		t.Fatalf("expired session = %d code %d, want 403/98", a.status, a.errorCode())
	}

	// VMC: exchange the API token at the CSP endpoint, then csp-auth-token.
	resp, err := c.http.PostForm(c.sim.URL()+"/csp/gateway/am/api/auth/api-tokens/authorize", url.Values{"refresh_token": {"vmc-api-token"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" || tok.ExpiresIn != 1800 {
		t.Fatalf("CSP answer: %+v", tok)
	}
	if a := c.do("GET", tier1, "", "csp-auth-token", tok.AccessToken); a.status != 200 {
		t.Fatalf("csp-auth-token = %d", a.status)
	}
	c.sim.ExpireTokens()
	if a := c.do("GET", tier1, "", "csp-auth-token", tok.AccessToken); a.status != 403 {
		t.Fatalf("expired token = %d", a.status)
	}
	resp, _ = c.http.PostForm(c.sim.URL()+"/csp/gateway/am/api/auth/api-tokens/authorize", url.Values{"refresh_token": {"bad"}})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("CSP with a bad token = %d", resp.StatusCode)
	}
	if s := c.sim.Stats(); s.Logins != 1 || s.TokenExchanges != 1 {
		t.Fatalf("stats logins=%d exchanges=%d", s.Logins, s.TokenExchanges)
	}
}

func TestClientCertificateAuth(t *testing.T) {
	sim := nsxsim.StartTest(t, nsxsim.Options{})
	certPEM, keyPEM, err := sim.IssueClientCert("t1route-principal")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Get(sim.URL() + "/policy/api/v1/infra/tier-1s/t1-routable")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("client certificate = %d", resp.StatusCode)
	}
	// A certificate from another CA is refused at the TLS handshake.
	other, _ := nsxsim.New(nsxsim.Options{})
	otherCert, otherKey, _ := other.IssueClientCert("intruder")
	bad, _ := tls.X509KeyPair(otherCert, otherKey)
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CertPool(), Certificates: []tls.Certificate{bad}}}}
	if resp, err := hc.Get(sim.URL() + "/policy/api/v1/infra/tier-1s/t1-routable"); err == nil {
		resp.Body.Close()
		t.Fatalf("foreign client certificate accepted: %d", resp.StatusCode)
	}
}

func TestRateAndConcurrencyLimits(t *testing.T) {
	c := newRaw(t, nsxsim.Options{RateLimit: 20})
	limited := 0
	for range 60 {
		a := c.do("GET", "/policy/api/v1/infra/tier-1s/t1-routable", "")
		if a.status == 429 {
			limited++
			if a.errorCode() != 102 || !strings.Contains(a.raw, "exceeded request rate of 20 per second") {
				t.Fatalf("429 body = %s", a.raw)
			}
		}
	}
	if limited == 0 {
		t.Fatal("60 back-to-back calls at a limit of 20/s were never rate limited")
	}

	c2 := newRaw(t, nsxsim.Options{ClientConcurrency: 2, RateLimit: -1, Latency: 200 * time.Millisecond})
	var wg sync.WaitGroup
	statuses := make(chan int, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- c2.do("GET", "/policy/api/v1/infra/tier-1s/t1-routable", "").status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] < 2 || count[429] == 0 {
		t.Fatalf("6 concurrent calls at a concurrency of 2: %v", count)
	}
}

func TestFaultRules(t *testing.T) {
	c := newRaw(t, nsxsim.Options{})
	rule, err := nsxsim.ParseFaultRule("method=GET,path=/tier-1s/,status=503,retry-after=2,count=2")
	if err != nil {
		t.Fatal(err)
	}
	c.sim.AddFault(rule)
	for i := range 3 {
		a := c.do("GET", "/policy/api/v1/infra/tier-1s/t1-routable", "")
		want := 503
		if i == 2 {
			want = 200
		}
		if a.status != want {
			t.Fatalf("call %d = %d, want %d", i, a.status, want)
		}
		if want == 503 && a.header.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After = %q", a.header.Get("Retry-After"))
		}
	}
	// Unlimited: Go's transport itself retries an idempotent request once
	// when a reused connection closes without an answer.
	c.sim.AddFault(nsxsim.FaultRule{Path: "static-routes", Reset: true})
	req, _ := http.NewRequest("GET", c.sim.URL()+routesPath, nil)
	req.SetBasicAuth(c.user, c.pass)
	if resp, err := c.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("reset fault answered %d", resp.StatusCode)
	}
	c.sim.ClearFaults()
	if a := c.do("GET", routesPath, ""); a.status != 200 {
		t.Fatalf("after ClearFaults = %d", a.status)
	}
	if s := c.sim.Stats(); s.Faults["503"] != 2 || s.Faults["reset"] < 1 {
		t.Fatalf("faults counted: %v", s.Faults)
	}
}

func TestParseFaultRule(t *testing.T) {
	good := map[string]nsxsim.FaultRule{
		"status=429": {Status: 429},
		"method=patch,path=^/policy,status=503,p=0.5,count=3": {Method: "PATCH", Path: "^/policy", Status: 503, Probability: 0.5, Count: 3},
		"reset,p=0.1": {Reset: true, Probability: 0.1},
		"delay=2s":    {Delay: 2 * time.Second},
		"status=502,body=<html>bad gateway</html>": {Status: 502, Body: "<html>bad gateway</html>"},
		"location=http://203.0.113.9/x":            {Location: "http://203.0.113.9/x"},
		"status=307,location=/elsewhere":           {Status: 307, Location: "/elsewhere"},
	}
	for in, want := range good {
		got, err := nsxsim.ParseFaultRule(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseFaultRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "method=GET", "status=abc", "status=42", "p=2,status=500", "path=([,status=500", "color=red,status=500", "delay=soon", "status=200,location=/x"} {
		if _, err := nsxsim.ParseFaultRule(in); err == nil {
			t.Errorf("ParseFaultRule(%q) accepted", in)
		}
	}
}

func TestSearchRealizedAndManagementPlane(t *testing.T) {
	c := newRaw(t, nsxsim.Options{RealizeDelay: time.Hour})
	c.sim.PutRoute("t1-routable", "mine", "100.96.1.0/24", []string{"198.51.100.1"}, nsxsim.Tag{Scope: "t1route/cluster-uid", Tag: "uid-1"})
	c.sim.PutRoute("t1-routable", "other", "100.96.2.0/24", []string{"198.51.100.2"}, nsxsim.Tag{Scope: "t1route/cluster-uid", Tag: "uid-2"})
	q := url.QueryEscape(`resource_type:StaticRoutes AND tags.scope:t1route\/cluster-uid AND tags.tag:uid-1`)
	a := c.do("GET", "/policy/api/v1/search/query?query="+q, "")
	if a.status != 200 || a.body["result_count"] != 1.0 {
		t.Fatalf("search = %d %s", a.status, a.raw)
	}
	if a := c.do("GET", "/policy/api/v1/search/query?query=color:red", ""); a.status != 400 {
		t.Fatalf("bad search = %d", a.status)
	}
	a = c.do("GET", "/policy/api/v1/infra/realized-state/realized-entities?intent_path="+url.QueryEscape("/infra/tier-1s/t1-routable/static-routes/mine"), "")
	res := a.body["results"].([]any)[0].(map[string]any)
	if res["state"] != "UNREALIZED" {
		t.Fatalf("state within RealizeDelay = %v", res["state"])
	}
	a = c.do("GET", "/policy/api/v1/infra/realized-state/realized-entities?intent_path="+url.QueryEscape("/infra/tier-1s/t1-routable/static-routes/absent"), "")
	if a.status != 404 {
		t.Fatalf("realized state of an absent route = %d", a.status)
	}
	if a := c.do("GET", "/api/v1/node", ""); a.body["product_version"] == nil {
		t.Fatalf("node = %s", a.raw)
	}
	c.sim.SetClusterStatus("DEGRADED")
	if a := c.do("GET", "/api/v1/cluster/status", ""); a.body["mgmt_cluster_status"].(map[string]any)["status"] != "DEGRADED" {
		t.Fatalf("cluster status = %s", a.raw)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestRouteCount: the test API's route count (what the bench polls for
// progress) follows creates and deletes, over HTTP as through the method.
func TestRouteCount(t *testing.T) {
	c := newRaw(t, nsxsim.Options{})
	count := func(tier1 string) float64 {
		t.Helper()
		a := c.do("GET", "/nsxsim/api/tier-1s/"+tier1+"/route-count", "")
		if a.status != 200 {
			t.Fatalf("route-count = %d %s", a.status, a.raw)
		}
		if n := float64(c.sim.RouteCount(tier1)); a.body["count"] != n {
			t.Fatalf("route-count over HTTP = %v, RouteCount = %v", a.body["count"], n)
		}
		return a.body["count"].(float64)
	}
	if n := count("t1-routable"); n != 0 {
		t.Fatalf("count of an empty tier-1 = %v", n)
	}
	for i := range 3 {
		if a := c.do("PATCH", fmt.Sprintf("%s/r%d", routesPath, i), routeBody(fmt.Sprintf("100.96.%d.0/24", i), "198.51.100.11")); a.status != 200 {
			t.Fatalf("PATCH = %d %s", a.status, a.raw)
		}
	}
	c.do("DELETE", routesPath+"/r1", "")
	if n := count("t1-routable"); n != 2 || n != float64(len(c.sim.Routes("t1-routable"))) {
		t.Fatalf("count after 3 creates and a delete = %v, want 2", n)
	}
	if n := count("no-such-tier1"); n != 0 {
		t.Fatalf("count of an unknown tier-1 = %v, want 0", n)
	}
}
