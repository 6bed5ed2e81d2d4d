package nsxsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultRule injects a failure into matching requests. Rules are data: set
// from flags (ParseFaultRule), Options.Faults, AddFault, or the test API
// (POST /nsxsim/api/faults with the rule as JSON).
type FaultRule struct {
	// Method matches the HTTP method; empty matches any.
	Method string `json:"method,omitempty"`
	// Path is a regular expression matched against the URL path; empty matches any.
	Path string `json:"path,omitempty"`
	// Status answers with this HTTP status and an NSX error body.
	Status int `json:"status,omitempty"`
	// ErrorCode is the error_code of that body; default by status (429 → 102).
	ErrorCode int `json:"error_code,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter int `json:"retry_after,omitempty"`
	// Reset closes the connection without answering.
	Reset bool `json:"reset,omitempty"`
	// Body replaces the NSX error body with raw bytes (garbage from a proxy);
	// ContentType goes with it (default text/html).
	Body        string `json:"body,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Location answers with a redirect there (Status, default 302): a
	// misconfigured proxy or an attacker between t1route and NSX, which
	// never redirects API calls itself.
	Location string `json:"location,omitempty"`
	// Echo answers with an error (Status, default 400) that quotes the
	// request: its line, headers (credentials included) and form body, as
	// some managers and proxies do; see echo.go.
	Echo bool `json:"echo,omitempty"`
	// Delay holds the request this long first (a latency spike, or a timeout
	// when longer than the client waits). With no Status and no Reset the
	// request then proceeds normally.
	Delay time.Duration `json:"delay,omitempty"`
	// Probability in (0,1] of applying to a matching request; 0 means 1.
	Probability float64 `json:"probability,omitempty"`
	// Count limits how many times the rule fires; 0 is unlimited.
	Count int `json:"count,omitempty"`
}

// Kind names the fault for stats: "429", "reset", "delay", ...
func (f FaultRule) Kind() string {
	switch {
	case f.Reset:
		return "reset"
	case f.Location != "":
		return "redirect"
	case f.Echo:
		return "echo"
	case f.Body != "":
		return "garbage"
	case f.Status != 0:
		return strconv.Itoa(f.Status)
	}
	return "delay"
}

// ParseFaultRule parses the flag form of a rule: comma-separated key=value
// pairs, e.g. "method=PATCH,path=^/policy/api/v1/infra$,status=503,p=0.2,count=10"
// or "path=/static-routes,reset,p=0.05". Keys: method, path, status, code,
// retry-after, reset, body, content-type, location, echo, delay, p (probability), count.
func ParseFaultRule(s string) (FaultRule, error) {
	var f FaultRule
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch strings.ToLower(k) {
		case "method":
			f.Method = strings.ToUpper(v)
		case "path":
			_, err = regexp.Compile(v)
			f.Path = v
		case "status":
			f.Status, err = strconv.Atoi(v)
			if err == nil && (f.Status < 100 || f.Status > 599) {
				err = fmt.Errorf("not an HTTP status")
			}
		case "code":
			f.ErrorCode, err = strconv.Atoi(v)
		case "retry-after":
			f.RetryAfter, err = strconv.Atoi(v)
		case "reset":
			f.Reset = v == "" || v == "true"
		case "body":
			f.Body = v
		case "content-type":
			f.ContentType = v
		case "location":
			f.Location = v
		case "echo":
			f.Echo = v == "" || v == "true"
		case "delay":
			f.Delay, err = time.ParseDuration(v)
		case "p", "probability":
			f.Probability, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.Probability < 0 || f.Probability > 1) {
				err = fmt.Errorf("not between 0 and 1")
			}
		case "count":
			f.Count, err = strconv.Atoi(v)
		default:
			return FaultRule{}, fmt.Errorf("fault rule %q: unknown key %q (want method, path, status, code, retry-after, reset, body, content-type, location, echo, delay, p, count)", s, k)
		}
		if err != nil {
			return FaultRule{}, fmt.Errorf("fault rule %q: bad %s value %q: %v", s, k, v, err)
		}
	}
	if f.Status == 0 && !f.Reset && f.Delay == 0 && f.Body == "" && f.Location == "" && !f.Echo {
		return FaultRule{}, fmt.Errorf("fault rule %q does nothing: give status=, reset, body=, location=, echo or delay=", s)
	}
	if f.Location != "" && f.Status != 0 && (f.Status < 300 || f.Status > 399) {
		return FaultRule{}, fmt.Errorf("fault rule %q: location= needs a 3xx status (or none, for 302)", s)
	}
	return f, nil
}

type activeFault struct {
	FaultRule
	re    *regexp.Regexp
	fired int
}

type faultTable struct {
	mu    sync.Mutex
	rules []*activeFault
}

func newFaultTable(rules []FaultRule) *faultTable {
	t := &faultTable{}
	for _, r := range rules {
		if err := t.add(r); err != nil {
			panic(err) // Options are programmer input; bad regexps are caught by ParseFaultRule
		}
	}
	return t
}

func (t *faultTable) add(r FaultRule) error {
	af := &activeFault{FaultRule: r}
	if r.Path != "" {
		re, err := regexp.Compile(r.Path)
		if err != nil {
			return fmt.Errorf("fault path %q: %w", r.Path, err)
		}
		af.re = re
	}
	t.mu.Lock()
	t.rules = append(t.rules, af)
	t.mu.Unlock()
	return nil
}

func (t *faultTable) clear() {
	t.mu.Lock()
	t.rules = nil
	t.mu.Unlock()
}

// pick returns the first rule that fires for r, counting it.
func (t *faultTable) pick(r *http.Request) (FaultRule, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.rules {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.re != nil && !f.re.MatchString(r.URL.Path) {
			continue
		}
		if f.Count > 0 && f.fired >= f.Count {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && rand.Float64() >= f.Probability {
			continue
		}
		f.fired++
		return f.FaultRule, true
	}
	return FaultRule{}, false
}

// inject applies a matching fault; it reports whether the request is done.
func (t *faultTable) inject(w *statusRecorder, r *http.Request, stats *counters) bool {
	if strings.HasPrefix(r.URL.Path, "/nsxsim/") {
		return false
	}
	f, ok := t.pick(r)
	if !ok {
		return false
	}
	stats.addFault(f.Kind())
	if f.Delay > 0 && !sleepCtx(r.Context(), f.Delay) {
		return true
	}
	switch {
	case f.Reset:
		if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				w.hijacked = true
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // net/http drops the connection
	case f.Location != "":
		status := f.Status
		if status == 0 {
			status = http.StatusFound
		}
		w.Header().Set("Location", f.Location)
		w.WriteHeader(status)
		return true
	case f.Echo:
		echoRequest(w, r, f.Status)
		return true
	case f.Body != "":
		ct := f.ContentType
		if ct == "" {
			ct = "text/html"
		}
		w.Header().Set("Content-Type", ct)
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.WriteHeader(status)
		w.Write([]byte(f.Body)) //nolint:errcheck
		return true
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		code, msg := f.ErrorCode, fmt.Sprintf("Injected fault: HTTP %d.", f.Status)
		if f.Status == http.StatusTooManyRequests {
			if code == 0 {
				code = CodeRateLimited
			}
			msg = "Client 'admin' exceeded request rate of 100 per second."
		}
		if code == 0 {
			code = CodeInternal
		}
		writeError(w, f.Status, code, msg)
		return true
	}
	return false // a pure delay: carry on
}
