package ovs

import (
	"strings"
	"testing"
)

func TestSplitTop(t *testing.T) {
	cases := map[string][]string{
		"ct(commit,zone=5,exec(set_field:0x1->ct_mark)),goto_table:100": {"ct(commit,zone=5,exec(set_field:0x1->ct_mark))", "goto_table:100"},
		"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT":               {"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]", "IN_PORT"},
		"resubmit(,100)": {"resubmit(,100)"},
		"":               nil,
	}
	for in, want := range cases {
		if got := SplitTop(in); strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("SplitTop(%q) = %q, want %q", in, got, want)
		}
	}
}
