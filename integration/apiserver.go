//go:build integration

// Package integration runs t1route against real components: a real
// kube-apiserver and etcd (built from the Go module proxy into .cache/bin by
// tools/build.sh) and nsxsim.
package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TB is the part of testing.TB the harness uses, so the demo can run it too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// Cluster is a running etcd + kube-apiserver.
type Cluster struct {
	Config     *rest.Config // admin (system:masters)
	Kubeconfig string       // path of an admin kubeconfig
	Client     kubernetes.Interface
	dir        string
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
}

// binDir is where tools/build.sh puts kube-apiserver and etcd.
func binDir(t TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", ".cache", "bin")
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s not found in %s: run integration/tools/build.sh (make test does)", b, dir)
		}
	}
	return dir
}

func freePort(t TB) int { return freePorts(t, 1)[0] }

// freePorts returns n distinct free ports: each listener stays open until
// all are chosen, or the kernel may hand out the same port twice (it did:
// etcd and kube-apiserver were given one port, and the apiserver failed).
func freePorts(t TB, n int) []int {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// StartCluster starts etcd and kube-apiserver on loopback and stops them when the test ends.
func StartCluster(t TB) *Cluster {
	t.Helper()
	bins := binDir(t)
	dir := t.TempDir()
	c := &Cluster{dir: dir}
	c.newCA(t)
	servingCert, servingKey := c.issue(t, "kube-apiserver", nil, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}, x509.ExtKeyUsageServerAuth)
	adminCert, adminKey := c.issue(t, "admin", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.crt", pemCert(c.caCert.Raw))
	certFile, keyFile := write("apiserver.crt", servingCert), write("apiserver.key", servingKey)
	saKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	saDER, _ := x509.MarshalECPrivateKey(saKey)
	saFile := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}))

	ports := freePorts(t, 3)
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	start(t, dir, "etcd", filepath.Join(bins, "etcd"),
		"--data-dir="+filepath.Join(dir, "etcd"), "--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=test="+peerURL,
		"--name=test", "--unsafe-no-fsync", "--log-level=error")
	start(t, dir, "kube-apiserver", filepath.Join(bins, "kube-apiserver"),
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort), "--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile, "--client-ca-file="+caFile,
		"--service-cluster-ip-range=100.64.0.0/16,2001:db8:64::/112", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saFile, "--service-account-signing-key-file="+saFile,
		"--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true",
		"--endpoint-reconciler-type=none", "--v=0")

	host := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.Config = &rest.Config{Host: host, QPS: 200, Burst: 400, TLSClientConfig: rest.TLSClientConfig{CAData: pemCert(c.caCert.Raw), CertData: adminCert, KeyData: adminKey}}
	c.Kubeconfig = write("kubeconfig", []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: admin, user: {client-certificate: %q, client-key: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, host, caFile, write("admin.crt", adminCert), write("admin.key", adminKey))))
	c.waitReady(t, host, caFile)
	var err error
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs a daemon, logging to dir/name.log, and stops it at cleanup.
func start(t TB, dir, name, bin string, args ...string) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startPinned(cmd); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil && len(b) > 0 {
				tail := b[max(0, len(b)-3000):]
				t.Logf("--- last lines of %s:\n%s", name, tail)
			}
		}
	})
}

func (c *Cluster) waitReady(t TB, host, caFile string) {
	pool := x509.NewCertPool()
	pool.AddCert(c.caCert)
	adminPair, err := tls.X509KeyPair(c.Config.CertData, c.Config.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{adminPair}}}}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready within 60 s (logs in %s)", c.dir)
}

func (c *Cluster) newCA(t TB) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t1route-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c.caCert, _ = x509.ParseCertificate(der)
	c.caKey = key
}

// issue signs a certificate; it returns certificate and key PEM.
func (c *Cluster) issue(t TB, cn string, orgs []string, ips []net.IP, dns []string, usage x509.ExtKeyUsage) ([]byte, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: dns}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
