//go:build linux

package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the cluster's one certificate authority; every certificate and
// kubeconfig is a file under dir.
type pki struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t1route-cluster-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, key: key}
	p.cert, _ = x509.ParseCertificate(der)
	p.CAFile = filepath.Join(dir, "ca.crt")
	return p, os.WriteFile(p.CAFile, pemBlock("CERTIFICATE", der), 0o644)
}

// issue writes name.crt and name.key, signed by the CA; it returns their paths.
func (p *pki) issue(name, cn string, orgs []string, ips []net.IP, dns []string, usage ...x509.ExtKeyUsage) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage, IPAddresses: ips, DNSNames: dns}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	crt, keyFile := filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	if err := os.WriteFile(crt, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return "", "", err
	}
	return crt, keyFile, os.WriteFile(keyFile, pemBlock("EC PRIVATE KEY", keyDER), 0o600)
}

// client issues a client certificate and writes a kubeconfig using it
// against server; it returns the kubeconfig's path.
func (p *pki) client(name, cn string, orgs []string, server string) (string, error) {
	crt, key, err := p.issue(name, cn, orgs, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return "", err
	}
	return p.kubeconfig(name, server, crt, key)
}

// kubeconfig writes name.kubeconfig for server with a client certificate.
func (p *pki) kubeconfig(name, server, crt, key string) (string, error) {
	path := filepath.Join(p.dir, name+".kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: t1route-cluster, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: %s, user: {client-certificate: %q, client-key: %q}}]
contexts: [{name: t1route-cluster, context: {cluster: t1route-cluster, user: %s}}]
current-context: t1route-cluster
`, server, p.CAFile, name, crt, key, name)
	return path, os.WriteFile(path, []byte(data), 0o600)
}

// serviceAccountKey writes the key that signs ServiceAccount tokens.
func (p *pki) serviceAccountKey() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(p.dir, "sa.key")
	return path, os.WriteFile(path, pemBlock("EC PRIVATE KEY", der), 0o600)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
