package probe

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"100.96.1.5", "http://100.96.1.5:8080/", ""},
		{"http://100.96.1.5:9000/x", "http://100.96.1.5:9000/x", ""},
		{"fd00::5", "http://[fd00::5]:8080/", ""},
		{"pod-a", "", "give a pod IP or an http:// URL"},
		{"https://100.96.1.5/", "", "give a pod IP or an http:// URL"},
		{"http://", "", "give a pod IP or an http:// URL"},
	}
	for _, tc := range cases {
		u, err := URL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.in, u, err, tc.want)
		}
	}
}

func text(rs []Result) (string, int) {
	var b strings.Builder
	failed := 0
	for _, r := range rs {
		verdict := "PASS"
		if !r.OK {
			verdict = "FAIL"
			failed++
		}
		b.WriteString(verdict + " " + r.Message + "\n")
	}
	return b.String(), failed
}

// The echo reports the caller's address as the server saw it, and the
// probe turns a mismatch into a NAT failure.
func TestEchoAndProbe(t *testing.T) {
	srv := httptest.NewServer(echoHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var reply Reply
	json.NewDecoder(resp.Body).Decode(&reply) //nolint:errcheck
	resp.Body.Close()
	if reply.RemoteIP != "127.0.0.1" {
		t.Fatalf("echo saw %+v", reply)
	}

	out, _ := text(Run(t.Context(), srv.URL+"/"))
	if !strings.Contains(out, "PASS http "+srv.URL+"/: the echo saw this host's own address 127.0.0.1 (no NAT)") {
		t.Fatalf("probe of a local echo:\n%s", out)
	}

	// A "NAT": a server that reports another source.
	natted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Reply{RemoteIP: "198.51.100.1", RemoteAddr: "198.51.100.1:4000"}) //nolint:errcheck
	}))
	defer natted.Close()
	out, failed := text(Run(t.Context(), natted.URL+"/"))
	if failed == 0 || !strings.Contains(out, "translated (NAT)") {
		t.Fatalf("a translated source passed:\n%s", out)
	}
}
