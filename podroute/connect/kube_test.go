package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKubeConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://198.51.100.1:6443"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600) //nolint:errcheck
	rc, err := KubeConfig(path, "t1route/v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	// Thousands of node condition patches need more than client-go's 5/s.
	if rc.Host != "https://198.51.100.1:6443" || rc.QPS != 50 || rc.Burst != 100 || rc.UserAgent != "t1route/v9.9.9" {
		t.Fatalf("host %s QPS %v burst %d user agent %q", rc.Host, rc.QPS, rc.Burst, rc.UserAgent)
	}
	if _, err := KubeConfig(filepath.Join(t.TempDir(), "absent"), "x"); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Fatalf("a missing kubeconfig: %v", err)
	}
}
