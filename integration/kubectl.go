//go:build integration

package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// Kubectl runs the real kubectl (built with kube-apiserver into .cache/bin)
// as the cluster's admin, with stdin, and returns its combined output.
func (c *Cluster) Kubectl(t TB, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ApplyCRD applies a CustomResourceDefinition (YAML) and waits until it is
// established.
func (c *Cluster) ApplyCRD(t TB, crd []byte) {
	t.Helper()
	out, err := c.Kubectl(t, string(crd), "apply", "-f", "-", "-o", "name")
	if err != nil {
		t.Fatalf("apply the CRD: %v\n%s", err, out)
	}
	if out, err := c.Kubectl(t, "", "wait", "--for=condition=Established", "--timeout=30s", strings.TrimSpace(out)); err != nil {
		t.Fatalf("CRD not established: %v\n%s", err, out)
	}
}
