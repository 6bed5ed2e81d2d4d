//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/t1route/t1route/podroute/version"
)

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestControllerBinary(t *testing.T) {
	bin := BuildBinaries(t)
	c := StartCluster(t)
	simEnv := StartNSXSim(t, bin, "--tier1", "t1-routable")
	for i := range 5 {
		createNode(t, c, nodeName(i), podCIDR(i), nodeIP(i))
	}
	metrics := freeAddr(t)
	logs := &strings.Builder{}
	cmd := exec.Command(filepath.Join(bin, "t1route"), "controller", "--kubeconfig", c.Kubeconfig,
		"--metrics-bind-address", metrics, "--metrics-secure=false", "--leader-election-namespace", "kube-system", "--leader-election-lease-duration", "4s",
		"--resync-period", "2s")
	cmd.Env = append(append(os.Environ(), simEnv...), "NSXT_POD_ROUTING_ENABLED=true", "CLUSTER_CIDR=100.96.0.0/11", "CLUSTER_NAME=binary-test")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("controller logs:\n%s", logs.String())
		}
	}()
	Eventually(t, 30*time.Second, "5 routes and ready", func() (bool, string) {
		code, body := get("http://" + metrics + "/metrics")
		ready, _ := get("http://" + metrics + "/readyz")
		return code == 200 && ready == 200 && strings.Contains(body, "t1route_actual_routes 5") && strings.Contains(body, "t1route_leader 1") &&
			strings.Contains(body, `t1route_nsx_calls_total{operation="apply static routes",status="200"}`), fmt.Sprintf("readyz %d", ready)
	})
	// SIGTERM: a clean exit, and the lease released for the next replica.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15 s of SIGTERM")
	}
	lease, err := c.Client.CoordinationV1().Leases("kube-system").Get(context.Background(), "t1route-controller", metav1.GetOptions{})
	if err != nil || (lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "") {
		t.Fatalf("lease not released: %v %v", err, lease.Spec.HolderIdentity)
	}
	for _, secret := range simEnv {
		if v, ok := strings.CutPrefix(secret, "NSXT_PASSWORD="); ok && strings.Contains(logs.String(), v) {
			t.Fatal("the password appears in the controller's logs")
		}
	}

	// Disabled: ready, idle, says so, touches nothing.
	logs.Reset()
	cmd = exec.Command(filepath.Join(bin, "t1route"), "controller", "--kubeconfig", c.Kubeconfig, "--metrics-bind-address", metrics, "--metrics-secure=false")
	cmd.Env = append(os.Environ(), "NSXT_POD_ROUTING_ENABLED=false")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "the disabled controller ready", func() (bool, string) {
		code, _ := get("http://" + metrics + "/readyz")
		return code == 200, ""
	})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if !strings.Contains(logs.String(), "pod routing is disabled") {
		t.Fatalf("the disabled controller did not say so:\n%s", logs.String())
	}
}

// Test binaries are stamped like the Makefile's: `t1route version` names the
// tree's version (podroute/version) and the commit.
func TestBinaryVersion(t *testing.T) {
	bin := BuildBinaries(t)
	out, err := exec.Command(filepath.Join(bin, "t1route"), "version").CombinedOutput()
	_, file, _, _ := runtime.Caller(0)
	commit := BuildCommit(filepath.Join(filepath.Dir(file), ".."))
	want := "t1route " + version.Version + " (commit " + commit + ")"
	if err != nil || strings.TrimSpace(string(out)) != want || commit == "" {
		t.Fatalf("t1route version: %v %q, want %q", err, out, want)
	}
}
