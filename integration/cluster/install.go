//go:build linux

package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/deploy/render"
)

// InstallT1route runs `t1route render | kubectl apply -f -` as the README
// says, with the cluster's nsx.env and images: the rendered output
// unchanged.
func (c *Cluster) InstallT1route(ctx context.Context) error {
	env, err := exportLines(c.NSXEnv)
	if err != nil {
		return err
	}
	if c.Images["t1route"] == "" {
		return fmt.Errorf("no t1route image in the cluster's registry: start it with an image layout (make image)")
	}
	kubectl := filepath.Join(c.cfg.KubeBin, "kubectl")
	r := exec.CommandContext(ctx, filepath.Join(c.binDir, "t1route"), "render", "--image", c.Images["t1route"], "--datapath-type", "netdev")
	r.Env = append(os.Environ(), env...)
	manifests, err := r.Output()
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	// One apply, as the README says: with the management guard configured
	// too, nothing in the stream waits for the CRDs it carries.
	apply := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(string(manifests))
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w\n%s", err, out)
	}
	return nil
}

// WaitController waits until the controller Deployment has its 2 replicas
// Ready.
func (c *Cluster) WaitController(ctx context.Context) error {
	return waitFor(ctx, 3*time.Minute, "controller Deployment Ready", func() (bool, error) {
		d, err := c.Client.AppsV1().Deployments(render.DefaultNamespace).Get(ctx, render.ControllerName, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2 && d.Status.Replicas == 2, nil
	})
}

// WaitAgents waits until the agent DaemonSet is Ready on every node, and
// the nodes are Ready.
func (c *Cluster) WaitAgents(ctx context.Context) error {
	if err := waitFor(ctx, 3*time.Minute, "agent DaemonSet Ready", func() (bool, error) {
		d, err := c.Client.AppsV1().DaemonSets(render.DefaultNamespace).Get(ctx, render.AgentName, metav1.GetOptions{})
		return err == nil && d.Status.DesiredNumberScheduled == int32(len(c.Nodes)) && d.Status.NumberReady == int32(len(c.Nodes)), nil
	}); err != nil {
		return err
	}
	return c.WaitNodes(ctx, 2*time.Minute, true)
}

// KubeBin is the folder of the Kubernetes binaries the cluster runs (kubectl among them).
func (c *Cluster) KubeBin() string { return c.cfg.KubeBin }

// BinDir is the folder of the t1route and nsxsim binaries the cluster built.
func (c *Cluster) BinDir() string { return c.binDir }

// TailLog returns the last n bytes of one of the cluster's logs
// (<dir>/logs/<name>.log: kube-apiserver, node-a-kubelet, …).
func (c *Cluster) TailLog(name string, n int) string {
	return tailFile(filepath.Join(c.Dir, "logs", name+".log"), n)
}

// exportLines reads an nsx.env of export lines as environment entries.
func exportLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: not NAME=value: %q", path, k)
		}
		env = append(env, k+"="+strings.Trim(v, `'"`))
	}
	return env, sc.Err()
}
