//go:build integration && e2e

package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary double as the forwarder that
// forwardIntoNetns starts inside a namespace.
func TestMain(m *testing.M) {
	if spec := os.Getenv(forwardEnv); spec != "" {
		fmt.Println(runForwarder(spec))
		os.Exit(1)
	}
	os.Exit(m.Run())
}
