//go:build linux

package cluster

import (
	"fmt"
	"os"
	"testing"
)

// make cluster-down's own make and shell name the cluster directory on
// their command lines: they are not leftovers.
func TestAncestorsIncludeTheCallers(t *testing.T) {
	a := ancestors(os.Getpid())
	for _, pid := range []int{os.Getpid(), os.Getppid()} {
		if !a[fmt.Sprint(pid)] {
			t.Errorf("ancestors of %d lack %d: %v", os.Getpid(), pid, a)
		}
	}
	if a["1"] {
		t.Error("init is counted as an asking process")
	}
}
