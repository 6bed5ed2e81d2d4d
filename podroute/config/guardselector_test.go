package config

import (
	"strings"
	"testing"
)

func TestParseGuardSelector(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"kube-system:app=my-agent", "kube-system:app=my-agent", ""},
		{" tools : team in (storage, backup) ", "tools:team in (backup,storage)", ""},
		{"kube-system", "", "want <namespace>:<label selector>"},
		{":app=x", "", "want <namespace>:<label selector>"},
		{"kube-system:", "", "want <namespace>:<label selector>"},
		{"kube-system:app in (", "", "management guard selector"},
	}
	for _, tc := range cases {
		g, err := ParseGuardSelector(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.ReplaceAll(g.String(), " ", "") != strings.ReplaceAll(tc.want, " ", "") {
			t.Errorf("%q: %v, %v; want %s", tc.in, g, err, tc.want)
		}
	}
}
