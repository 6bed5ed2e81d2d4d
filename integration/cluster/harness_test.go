//go:build integration && e2e

package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/deploy/image/builder"
)

// imageLayout returns an OCI layout holding t1route's images: with
// fromEnv, CLUSTER_IMAGES when it is set (make e2e-cluster passes make
// image's .cache/image/oci); else the images built here as version.
func imageLayout(tb testing.TB, version string, fromEnv bool) string {
	tb.Helper()
	if layout := os.Getenv("CLUSTER_IMAGES"); fromEnv && layout != "" {
		if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
			tb.Fatalf("CLUSTER_IMAGES=%s is not an OCI layout (make image writes .cache/image/oci): %v", layout, err)
		}
		return layout
	}
	imgs := buildImages(tb, version)
	layout := filepath.Join(tb.TempDir(), "oci")
	if err := builder.WriteLayout(layout, []builder.Named{{Ref: "ghcr.io/t1route/t1route:test", Image: imgs.Controller},
		{Ref: "ghcr.io/t1route/t1route-node:test", Image: imgs.Node}}); err != nil {
		tb.Fatal(err)
	}
	return layout
}

// startCluster starts a cluster (root) in a temporary directory with
// cfg's images and settings. When tb ends, the cluster goes and tb fails
// if anything of it is left; after a failure, the end of each named log
// (<dir>/logs/<name>.log) is logged first.
func startCluster(tb testing.TB, cfg Config, logs ...string) *Cluster {
	tb.Helper()
	requireRoot(tb)
	cfg.Dir, cfg.Root, cfg.HideHostOVS, cfg.Logf = tb.TempDir(), repoRoot(tb), true, tb.Logf
	c, err := Up(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	state := c.State()
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, n := range logs {
				tb.Logf("--- end of %s.log:\n%s", n, tailFile(filepath.Join(cfg.Dir, "logs", n+".log"), 3000))
			}
		}
		if err := c.Down(); err != nil {
			tb.Errorf("Down: %v", err)
		}
		if left := Leftovers(state); len(left) > 0 {
			tb.Errorf("left behind after Down:\n  %s", strings.Join(left, "\n  "))
		}
	})
	return c
}

// requireRoot fails tb unless it runs as root, before anything is built.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("%s needs root (namespaces, cgroups, containerd): run it as root (make test-cluster, make e2e-cluster, make bench-cluster)", tb.Name())
	}
}

// installT1route installs t1route as the README says (Cluster.InstallT1route).
func installT1route(ctx context.Context, tb testing.TB, c *Cluster) {
	tb.Helper()
	if err := c.InstallT1route(ctx); err != nil {
		tb.Fatal(err)
	}
}

func waitController(ctx context.Context, c *Cluster) error { return c.WaitController(ctx) }

func waitAgents(ctx context.Context, c *Cluster) error { return c.WaitAgents(ctx) }

// echoPod is a pod running `t1route echo` from t1route's image on node, as
// a user would write it: a tagged image pulled if not present, readiness
// and liveness probes.
func echoPod(c *Cluster, node, name string) *corev1.Pod {
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "echo", Image: c.Images["t1route"],
			ImagePullPolicy: corev1.PullIfNotPresent, Args: []string{"echo", "--listen", ":8080"},
			Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
			ReadinessProbe: probe, LivenessProbe: probe}}},
	}
}

// createEcho creates echoPod(node, name) in the default namespace.
func createEcho(ctx context.Context, c *Cluster, node, name string) error {
	_, err := c.Client.CoreV1().Pods("default").Create(ctx, echoPod(c, node, name), metav1.CreateOptions{})
	return err
}

// runEcho creates echoPod(node, name) and waits until it is Ready.
func runEcho(ctx context.Context, c *Cluster, node, name string) (*corev1.Pod, error) {
	if err := createEcho(ctx, c, node, name); err != nil {
		return nil, err
	}
	var pod *corev1.Pod
	err := waitFor(ctx, 90*time.Second, name+" Ready", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && ready(p) {
			pod = p
		}
		return pod != nil, nil
	})
	return pod, err
}

func ready(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
