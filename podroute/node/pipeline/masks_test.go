package pipeline

import (
	"fmt"
	"testing"
)

// masks must cover a range exactly, every port checked, within 30 pairs.
func TestMasksCoverRangesExactly(t *testing.T) {
	for _, r := range [][2]uint16{{80, 80}, {8080, 8090}, {0, 65535}, {1, 65535}, {1024, 2047}, {1, 1}, {65535, 65535}, {32767, 32769}, {3, 65534}} {
		ms := masks(r[0], r[1])
		if len(ms) > 30 {
			t.Errorf("%v: %d masks", r, len(ms))
		}
		for p := 0; p <= 65535; p++ {
			in := false
			for _, m := range ms {
				if uint16(p)&m.Mask == m.Value {
					in = true
				}
			}
			if want := p >= int(r[0]) && p <= int(r[1]); in != want {
				t.Fatalf("%v (masks %v): port %d matched %v, want %v", r, ms, p, in, want)
			}
		}
	}
	if got := fmt.Sprint(masks(8080, 8090)); got != "[{8080 65528} {8088 65534} {8090 65535}]" {
		t.Errorf("8080-8090: %s", got)
	}
}
