package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/podroute"
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

// The controller's node status patches have a rate limiter of their own:
// exhausting the main client's leaves theirs untouched.
func TestControllerClientsHaveSeparateRateLimits(t *testing.T) {
	rc := &rest.Config{Host: "https://198.51.100.1:6443", QPS: 5, Burst: 10, UserAgent: "t1route/v9.9.9"}
	cl, err := NewControllerClients(rc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rc.QPS != 5 || rc.Burst != 10 {
		t.Fatalf("the given config was changed: QPS %v burst %d", rc.QPS, rc.Burst)
	}
	mainRL := cl.Kube.CoreV1().RESTClient().GetRateLimiter()
	statusRL := cl.NodeStatus.CoreV1().RESTClient().GetRateLimiter()
	if mainRL.QPS() != KubeQPS || statusRL.QPS() != podroute.NodeStatusQPS {
		t.Fatalf("QPS: main %v, node status %v", mainRL.QPS(), statusRL.QPS())
	}
	n := 0
	for mainRL.TryAccept() {
		n++
	}
	if n != KubeBurst || !statusRL.TryAccept() {
		t.Fatalf("main burst %d; node status limiter still accepts: %v", n, statusRL.TryAccept())
	}
}

// T1ROUTE_NODE_STATUS_QPS sets the node status client's rate, and only its.
func TestControllerClientsNodeStatusQPS(t *testing.T) {
	cl, err := NewControllerClients(&rest.Config{Host: "https://198.51.100.1:6443"}, 120)
	if err != nil {
		t.Fatal(err)
	}
	if m, s := cl.Kube.CoreV1().RESTClient().GetRateLimiter().QPS(), cl.NodeStatus.CoreV1().RESTClient().GetRateLimiter().QPS(); m != KubeQPS || s != 120 {
		t.Fatalf("QPS: main %v, node status %v", m, s)
	}
}
