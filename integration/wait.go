//go:build integration

package integration

import "time"

// Eventually polls cond every 100 ms until it holds, failing t after
// timeout with what was awaited and cond's last detail.
func Eventually(t TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s:\n%s", timeout, what, last)
		}
	}
}
