package policy

import (
	"fmt"
	"testing"

	"github.com/t1route/t1route/podroute/node/policy/rules"
)

func TestNormalizePorts(t *testing.T) {
	cases := []struct {
		in   []rules.PortRange
		want string
	}{
		{nil, "[]"},
		{[]rules.PortRange{{Protocol: rules.TCP, Start: 80, End: 80}, {Protocol: rules.TCP, Start: 81, End: 90}, {Protocol: rules.UDP, Start: 53, End: 53}, {Protocol: rules.TCP, Start: 80, End: 80}}, "[TCP/80-90 UDP/53]"},
		{[]rules.PortRange{{Protocol: rules.TCP, Start: 80, End: 80}, {Protocol: rules.TCP, Start: 0, End: 65535}}, "[TCP]"},
		{[]rules.PortRange{{Protocol: rules.SCTP, Start: 9, End: 9}, {Protocol: rules.TCP, Start: 100, End: 200}, {Protocol: rules.TCP, Start: 150, End: 300}, {Protocol: rules.TCP, Start: 400, End: 400}}, "[TCP/100-300 TCP/400 SCTP/9]"},
	}
	for _, tc := range cases {
		got := normalizePorts(tc.in)
		if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && got == nil) {
			t.Errorf("normalizePorts(%v) = %s, want %s", tc.in, s, tc.want)
		}
	}
}
