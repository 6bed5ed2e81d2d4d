package nsx_test

import (
	"strings"
	"testing"

	"github.com/t1route/t1route/nsx"
)

// TestTier1ID: the rule stated at Tier1ID, as a table. Each refused path
// gets an error that says what is wrong.
func TestTier1ID(t *testing.T) {
	long := strings.Repeat("a", nsx.MaxIDLength)
	good := map[string]string{
		"/infra/tier-1s/t1-routable":                          "t1-routable",
		"/infra/tier-1s/cgw":                                  "cgw",
		"/infra/tier-1s/T1_Gateway.prod~2":                    "T1_Gateway.prod~2",
		"/infra/tier-1s/0b8411c0-f6bc-11e9-96cd-1929accbdbaf": "0b8411c0-f6bc-11e9-96cd-1929accbdbaf",
		"/infra/tier-1s/...":                                  "...", // not a dot-segment
		"/infra/tier-1s/" + long:                              long,
	}
	for path, want := range good {
		if id, err := nsx.Tier1ID(path); err != nil || id != want {
			t.Errorf("Tier1ID(%.40q) = %q, %v; want %q", path, id, err, want)
		}
	}
	bad := map[string]string{ // path -> what the error must say
		"":                                            "must be of the form",
		"t1-routable":                                 "must be of the form",
		"/infra/tier-0s/t0":                           "must be of the form",
		"/INFRA/tier-1s/t1":                           "must be of the form",
		"/infra/tier-1s/":                             "empty",
		"/infra/tier-1s/.":                            "path segment",
		"/infra/tier-1s/..":                           "path segment",
		"/infra/tier-1s/a/b":                          "'/' at position 2",
		"/infra/tier-1s/t1?x=1":                       "'?'",
		"/infra/tier-1s/t1#x":                         "'#'",
		"/infra/tier-1s/t%2F1":                        "'%'",
		"/infra/tier-1s/t 1":                          "' '",
		"/infra/tier-1s/t1\n":                         "'\\n'",
		"/infra/tier-1s/t\x001":                       "'\\x00'",
		"/infra/tier-1s/t\x1b[31m1":                   "'\\x1b'",
		"/infra/tier-1s/\"t1\"":                       "'\"'",
		"/infra/tier-1s/t1'":                          "'\\''",
		"/infra/tier-1s/t1\\":                         "'\\\\'",
		"/infra/tier-1s/tïer":                         "non-ASCII",
		"/infra/tier-1s/" + long + "a":                "256 characters long",
		"/infra/tier-1s/" + strings.Repeat("x", 5000): "5000 characters long",
	}
	for path, want := range bad {
		id, err := nsx.Tier1ID(path)
		if err == nil {
			t.Errorf("Tier1ID(%.40q) accepted, id %.40q", path, id)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Tier1ID(%.40q) = %v; want it to say %s", path, err, want)
		}
		if len(err.Error()) > 400 || strings.ContainsAny(err.Error(), "\n\x00\x1b") {
			t.Errorf("Tier1ID(%.40q): error %q is long or not printable", path, err)
		}
	}
}
