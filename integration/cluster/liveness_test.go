//go:build integration && e2e

package cluster

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/deploy/render"
)

// agentHang is an agent hung on purpose (SIGSTOP: the kernel still
// accepts connections to its /healthz, nothing answers), to check what the
// rendered liveness probe promises: the kubelet kills the hung agent and
// starts it again, and the agent comes back Ready. With the rendered probe
// (every 10 s, 3 failures) that takes 20 to 30 s, so other steps that do
// not need this node's agent run meanwhile.
type agentHang struct {
	agent   *corev1.Pod
	before  int32 // the agent container's restarts before
	pids    []int
	at      time.Time
	resumed bool
}

// hangAgent stops the processes of the agent container on node.
func hangAgent(ctx context.Context, t *testing.T, c *Cluster, node string) *agentHang {
	h := &agentHang{agent: agentPodOn(ctx, t, c, node)}
	h.before = restartCount(h.agent, "agent")
	var err error
	if h.pids, err = c.ContainerPids(h.agent, "agent"); err != nil {
		t.Fatal(err)
	}
	h.at = time.Now()
	if n, _ := h.signal(syscall.SIGSTOP); n == 0 {
		t.Fatalf("no process of %s's agent container to stop (%v)", h.agent.Name, h.pids)
	}
	return h
}

// signal sends sig to the agent's processes; a short-lived child
// (ovs-ofctl) may be gone by then.
func (h *agentHang) signal(sig syscall.Signal) (n int, err error) {
	for _, pid := range h.pids {
		if e := syscall.Kill(pid, sig); e == nil {
			n++
		} else if !errors.Is(e, syscall.ESRCH) {
			err = fmt.Errorf("%v to agent process %d: %w", sig, pid, e)
		}
	}
	return n, err
}

// resume lets the hung agent run again, if it is still hung.
func (h *agentHang) resume() error {
	if h == nil || h.resumed {
		return nil
	}
	h.resumed = true
	_, err := h.signal(syscall.SIGCONT)
	return err
}

// finish waits for the kubelet to kill the hung agent, checks that pod on
// (on the agent's node) still answers the external host and pod from
// while the agent hangs, lets the agent take the kubelet's SIGTERM, and
// waits for it to be restarted and Ready; on still answers after.
func (h *agentHang) finish(ctx context.Context, t *testing.T, c *Cluster, on, from *corev1.Pod) {
	defer h.resume() //nolint:errcheck // for early exits; checked below
	var killing string
	if err := waitFor(ctx, 60*time.Second, "the kubelet killing the hung agent", func() (bool, error) {
		ev, err := c.Client.CoreV1().Events(h.agent.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.uid=" + string(h.agent.UID) + ",reason=Killing"})
		if err != nil {
			return false, nil
		}
		for _, e := range ev.Items {
			if strings.Contains(e.Message, "liveness") && !e.LastTimestamp.Time.Before(h.at.Truncate(time.Second)) {
				killing = e.Message
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	detected := time.Since(h.at)
	// The flows stay in Open vSwitch: the hung agent's node still forwards.
	reach(ctx, t, c, on, from, "while its agent hangs")
	// The kubelet's SIGTERM is pending: let the agent take it and exit.
	if err := h.resume(); err != nil {
		t.Error(err)
	}
	var now *corev1.Pod
	if err := waitFor(ctx, 60*time.Second, "the agent restarted and Ready", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods(h.agent.Namespace).Get(ctx, h.agent.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		now = p
		return restartCount(p, "agent") > h.before && containerReady(p, "agent") && ready(p), nil
	}); err != nil {
		t.Fatalf("%v: agent container %+v", err, now.Status.ContainerStatuses)
	}
	t.Logf("%s: the kubelet said %q %.1f s after the hang; the agent restarted (%d restarts) and Ready %.1f s after the hang",
		h.agent.Name, killing, detected.Seconds(), restartCount(now, "agent"), time.Since(h.at).Seconds())
	reach(ctx, t, c, on, from, "after its agent restarted")
}

// reach checks that pod to answers the external host and pod from, each
// seeing the caller's own address.
func reach(ctx context.Context, t *testing.T, c *Cluster, to, from *corev1.Pod, when string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "5", "http://"+to.Status.PodIP+":8080/").CombinedOutput()
	if err != nil || !echoed(string(out), to.Name, ExternalIP) {
		t.Errorf("external host -> %s %s: %v %q", to.Name, when, err, out)
	}
	out2, err := c.PodExec(ctx, from, "curl", "-s", "-m", "5", "http://"+to.Status.PodIP+":8080/")
	if err != nil || !echoed(out2, to.Name, from.Status.PodIP) {
		t.Errorf("%s -> %s %s: %v %q", from.Name, to.Name, when, err, out2)
	}
}

// agentPodOn returns the agent DaemonSet's pod on node.
func agentPodOn(ctx context.Context, t *testing.T, c *Cluster, node string) *corev1.Pod {
	t.Helper()
	ns := render.DefaultNamespace
	d, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, render.AgentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("agent pods on %s: %d, want 1", node, len(list.Items))
	}
	return &list.Items[0]
}

func restartCount(p *corev1.Pod, container string) int32 {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == container {
			return s.RestartCount
		}
	}
	return -1
}

func containerReady(p *corev1.Pod, container string) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == container {
			return s.Ready
		}
	}
	return false
}
