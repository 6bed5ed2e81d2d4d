package main

import (
	"io"
	"testing"
)

// What each daemon serves, by default, on the host network: the agent's
// plain-HTTP health and metrics on loopback only; the controller's on every
// interface, but HTTPS with /metrics for authorized tokens only
// (--metrics-secure).
func TestEndpointDefaults(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	agent := newAgentCommand(io.Discard, env).Flags()
	if got := agent.Lookup("health-bind-address").DefValue; got != "127.0.0.1:8081" {
		t.Errorf("agent --health-bind-address defaults to %q: its unauthenticated metrics would be open on every node interface", got)
	}
	ctrl := newControllerCommand(io.Discard, io.Discard, env).Flags()
	if got := ctrl.Lookup("metrics-secure").DefValue; got != "true" {
		t.Errorf("controller --metrics-secure defaults to %s", got)
	}
}
