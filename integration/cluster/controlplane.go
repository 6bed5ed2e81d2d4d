//go:build linux

package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startControlPlane runs etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in the control plane namespace (198.51.100.2, reachable
// from nodes and pods through the router), and forwards a loopback port of
// this namespace to the API server for kubectl.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	d := filepath.Join(c.Dir, "control-plane")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	if err := makeCgroup(c.state.Cgroup + "/control-plane"); err != nil {
		return err
	}
	ns := c.ControlPlaneNS
	bin := func(b string) string { return filepath.Join(c.cfg.KubeBin, b) }
	inCP := func(args ...string) []string { return append([]string{"ip", "netns", "exec", ns}, args...) }

	servingCrt, servingKey, err := c.pki.issue("apiserver", "kube-apiserver", nil,
		[]net.IP{net.ParseIP(ControlPlaneIP), net.ParseIP("127.0.0.1"), net.ParseIP("100.64.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	kubeletClientCrt, kubeletClientKey, err := c.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
		[]string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	saKey, err := c.pki.serviceAccountKey()
	if err != nil {
		return err
	}
	internal := fmt.Sprintf("https://%s:%d", ControlPlaneIP, APIServerPort)
	kcmConfig, err := c.pki.client("kube-controller-manager", "system:kube-controller-manager", nil, internal)
	if err != nil {
		return err
	}
	schedConfig, err := c.pki.client("kube-scheduler", "system:kube-scheduler", nil, internal)
	if err != nil {
		return err
	}

	if _, err := c.start("etcd", "control-plane", inCP(bin("etcd"), "--name=default", "--data-dir="+filepath.Join(d, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=default=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn")...); err != nil {
		return err
	}
	c.apiArgs = inCP(bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=0.0.0.0", "--advertise-address="+ControlPlaneIP,
		"--secure-port="+strconv.Itoa(APIServerPort), "--cert-dir="+filepath.Join(d, "apiserver-certs"),
		"--tls-cert-file="+servingCrt, "--tls-private-key-file="+servingKey, "--client-ca-file="+c.pki.CAFile,
		"--service-cluster-ip-range="+ServiceCIDR, "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
		"--kubelet-client-certificate="+kubeletClientCrt, "--kubelet-client-key="+kubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP", "--profiling=false", "--v=1")
	api, err := c.start("kube-apiserver", "control-plane", c.apiArgs...)
	if err != nil {
		return err
	}
	c.api = api

	// kubectl on this machine reaches the API server through a loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.fwd.serve(ln, func(ctx context.Context) (net.Conn, error) {
		return dialInNetns(ctx, ns, fmt.Sprintf("%s:%d", ControlPlaneIP, APIServerPort))
	})
	c.APIServer = "https://" + ln.Addr().String()
	if c.Kubeconfig, err = c.pki.client("admin", "t1route-cluster-admin", []string{"system:masters"}, c.APIServer); err != nil {
		return err
	}
	if c.InternalKubeconfig, err = c.pki.kubeconfig("admin-internal", internal, filepath.Join(c.pki.dir, "admin.crt"), filepath.Join(c.pki.dir, "admin.key")); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx, api); err != nil {
		return err
	}
	if _, err := c.start("kube-controller-manager", "control-plane", inCP(bin("kube-controller-manager"),
		"--kubeconfig="+kcmConfig, "--authentication-kubeconfig="+kcmConfig, "--authorization-kubeconfig="+kcmConfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10257",
		"--service-account-private-key-file="+saKey, "--root-ca-file="+c.pki.CAFile, "--use-service-account-credentials=true",
		"--allocate-node-cidrs=true", "--cluster-cidr="+ClusterCIDR, "--node-cidr-mask-size=24",
		"--service-cluster-ip-range="+ServiceCIDR, "--flex-volume-plugin-dir="+filepath.Join(d, "flex-volume"), "--v=1")...); err != nil {
		return err
	}
	if _, err := c.start("kube-scheduler", "control-plane", inCP(bin("kube-scheduler"),
		"--kubeconfig="+schedConfig, "--authentication-kubeconfig="+schedConfig, "--authorization-kubeconfig="+schedConfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259", "--v=1")...); err != nil {
		return err
	}
	return nil
}

// waitAPIServer waits for /readyz through the loopback forward.
func (c *Cluster) waitAPIServer(ctx context.Context, api *proc) error {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.pki.CAFile)
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(ca)
	crt, key := filepath.Join(c.pki.dir, "admin.crt"), filepath.Join(c.pki.dir, "admin.key")
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	return waitFor(ctx, 90*time.Second, "kube-apiserver /readyz", func() (bool, error) {
		if done, log := api.exited(); done {
			return false, fmt.Errorf("kube-apiserver exited:\n%s", log)
		}
		resp, err := hc.Get(c.APIServer + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// startNSX runs nsxsim as the NSX Manager (203.0.113.5:443, outside the
// Tier-1) realizing its Tier-1's static routes in the router namespace,
// and writes nsx.env from what it prints.
func (c *Cluster) startNSX(ctx context.Context) error {
	if err := makeCgroup(c.state.Cgroup + "/nsx"); err != nil {
		return err
	}
	cmd := exec.Command("ip", "netns", "exec", c.NSXNS, filepath.Join(c.binDir, "nsxsim"),
		"--listen", NSXManagerIP+":443", "--tier1", Tier1, "--realize-netns", c.RouterNS)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(c.Dir, "logs", "nsxsim.log"))
	if err != nil {
		return err
	}
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{name: "nsxsim", cmd: cmd, log: logFile, done: make(chan struct{})}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	if err := joinCgroup(c.state.Cgroup+"/nsx", cmd.Process.Pid); err != nil {
		return err
	}
	lines := make(chan []string, 1)
	go func() {
		var env []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			env = append(env, sc.Text())
			if strings.HasPrefix(sc.Text(), "export NSXT_ROOT_CA_DATA_B64=") {
				break
			}
		}
		lines <- env
		for sc.Scan() {
		}
		cmd.Wait() //nolint:errcheck
		close(p.done)
	}()
	select {
	case env := <-lines:
		if len(env) < 5 {
			return fmt.Errorf("nsxsim printed %q; its log:\n%s", env, tailFile(logFile.Name(), 2000))
		}
		// The NSX Manager stands in for the vCenter management network the
		// guard keeps pods from.
		env = append(env, "export NSXT_POD_ROUTING_ENABLED=true", "export CLUSTER_CIDR="+ClusterCIDR, "export CLUSTER_NAME="+ClusterName,
			"export NSXT_MANAGEMENT_CIDR="+NSXManagerIP+"/32")
		c.NSXEnv = filepath.Join(c.Dir, "nsx.env")
		return os.WriteFile(c.NSXEnv, []byte(strings.Join(env, "\n")+"\n"), 0o600)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("nsxsim printed nothing in 30 s; its log:\n%s", tailFile(logFile.Name(), 2000))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startExternal runs an echo server on the external host (203.0.113.10:8080)
// that answers with the caller's address as it saw it: pods reaching it
// prove their traffic leaves without NAT.
func (c *Cluster) startExternal() error {
	if err := makeCgroup(c.state.Cgroup + "/external"); err != nil {
		return err
	}
	_, err := c.start("external-echo", "external", "ip", "netns", "exec", c.ExternalNS,
		filepath.Join(c.binDir, "t1route"), "echo", "--listen", ExternalIP+":8080", "--udp")
	return err
}

// waitFor polls cond until it is true, fails, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
