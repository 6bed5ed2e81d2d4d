//go:build integration && e2e

package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/version"
)

// TestSecurityRebootFailsClosed reboots a node (every process gone, its
// tmpfs state gone: the OVS run directory with t1route's policy rules, and
// the saved flows; the OVS database, the CNI configuration and the IPAM
// reservations kept on disk) while a pod on it tries to reach the
// management network every 10 ms from its first instant, and the agents
// cannot list NetworkPolicies until 30 s after the node's agent started
// again (so its policy enforcer cannot compute the rules): not one attempt
// may get through, before or after the agent is back. The pod must be attached
// again, and no port or address of the pods that died stay.
//
// T1ROUTE_RELEASE=<dir of upgrade-from.sh> runs it against another
// release's images instead of this tree's (to show what a release without
// the fail-closed node start does).
func TestSecurityRebootFailsClosed(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	c := startCluster(t, Config{ImageLayout: imageLayout(t, version.Version, true)}, "node-a-kubelet", "node-b-kubelet")
	r := thisRelease(t, c)
	if dir := os.Getenv("T1ROUTE_RELEASE"); dir != "" {
		t.Setenv("T1ROUTE_UPGRADE_FROM", dir)
		r = previousRelease(ctx, t, c)
		t.Logf("release under test: %s (%s)", r.version, filepath.Base(dir))
	}
	apply(ctx, t, c, r)
	rollout(ctx, t, c, 3*time.Minute)
	node := c.Nodes[1]
	proberImage := pushProber(ctx, t, c)
	pods, err := runPods(ctx, c, guardProbePod(proberImage, node.Name, "guard-probe"))
	if err != nil {
		t.Fatal(err)
	}
	probe := pods[0]
	// The guard in force for the running pod first (the controller applies
	// its policies once the CRD is served).
	if err := waitFor(ctx, 2*time.Minute, "the guard probe denied", func() (bool, error) {
		return !tcpReaches(ctx, c, probe, NSXManagerIP+":443"), nil
	}); err != nil {
		t.Fatal(err)
	}
	checkNodeClean(ctx, t, c, node)
	before := readGuardLog(ctx, c, probe)
	t.Logf("before the reboot: %d attempts, %d connected (the pod started before the guard's policies existed)", before.attempts, len(before.connected))

	// The enforcer needs the API server to compute the node's rules: here it
	// cannot for the first 40 s after the reboot (the agents may not list
	// NetworkPolicies meanwhile, as when the API server is slow or away while
	// nodes boot), which is when an agent that attaches pods before its rules
	// exist lets them out.
	restore := revokeAgentNetworkPolicies(ctx, t, c)
	rebootAt := time.Now()
	if err := c.Reboot(ctx, node); err != nil {
		t.Fatal(err)
	}
	// The agent back (its container started again), then 30 s in which it
	// runs without its rules: time for the kubelet to try the pod again.
	agentUp := time.Now()
	if err := waitFor(ctx, 3*time.Minute, "the agent on "+node.Name+" running again", func() (bool, error) {
		p := agentPodOn(ctx, t, c, node.Name)
		for _, st := range p.Status.ContainerStatuses {
			if st.Name == "agent" && st.State.Running != nil && !st.State.Running.StartedAt.Time.Before(rebootAt.Truncate(time.Second)) {
				agentUp = st.State.Running.StartedAt.Time
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	restore()
	t.Logf("the agent on %s started again %.0f s after the reboot began; the agents may list NetworkPolicies again %.0f s after it",
		node.Name, agentUp.Sub(rebootAt).Seconds(), time.Since(agentUp).Seconds())
	if _, err := waitRestarted(ctx, c, rebootAt, 3*time.Minute, probe); err != nil {
		t.Fatal(err)
	}
	logAgents(ctx, t, c)
	// Let the restarted pod probe for a while after it came back.
	var after guardLog
	if err := waitFor(ctx, 2*time.Minute, "the restarted probe pod probing for 20 s", func() (bool, error) {
		after = readGuardLog(ctx, c, probe)
		for _, s := range after.starts {
			if s.After(rebootAt) && time.Since(s) > 20*time.Second {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	var started time.Time
	for _, s := range after.starts {
		if s.After(rebootAt) {
			started = s
		}
	}
	passed := within(after.connected, rebootAt, time.Now())
	fmt.Printf("security: reboot: the restarted pod probed the management network from %.1f s after the reboot began: %d attempts, %d connected\n",
		started.Sub(rebootAt).Seconds(), after.attempts, passed)
	if passed > 0 {
		t.Errorf("%d connections to the management network got through after %s rebooted (first at %s)", passed, node.Name, after.connected[len(after.connected)-passed].Format(time.RFC3339Nano))
	}
	if after.attempts < 200 {
		t.Errorf("only %d attempts: the probe did not run", after.attempts)
	}
	checkNodeClean(ctx, t, c, node)
}

// revokeAgentNetworkPolicies takes the agents' permission to list and watch
// NetworkPolicies away; the returned function gives it back.
func revokeAgentNetworkPolicies(ctx context.Context, t *testing.T, c *Cluster) func() {
	t.Helper()
	roles := c.Client.RbacV1().ClusterRoles()
	role, err := roles.Get(ctx, render.AgentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	original := role.DeepCopy()
	var kept []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if !slices.Contains(r.Resources, "networkpolicies") {
			kept = append(kept, r)
		}
	}
	role.Rules = kept
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return func() {
		cur, err := roles.Get(ctx, render.AgentName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Rules = original.Rules
		if _, err := roles.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
