//go:build integration

package integration

import (
	"slices"
	"time"
)

// Percentile is the p-th percentile of d (nearest rank), to the
// millisecond; d is not reordered. Zero for no samples.
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}
