package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ClientCert authenticates with a client certificate (an NSX principal
// identity, mutual TLS). No other credential is sent. From files, the pair
// is re-read when either file changes on disk (a mounted Secret being
// rotated) and takes effect on the next TLS handshake; a half-written pair
// keeps the previous one in use.
type ClientCert struct {
	// CertPEM and KeyPEM hold the pair (NSXT_CLIENT_CERT_DATA, NSXT_CLIENT_CERT_KEY_DATA).
	CertPEM, KeyPEM []byte
	// CertFile and KeyFile hold the pair's paths (NSXT_CLIENT_CERT_FILE, NSXT_CLIENT_KEY_FILE).
	CertFile, KeyFile string
	Logger            *zap.Logger

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // modification times and sizes of the files loaded
}

// String never shows the key.
func (c *ClientCert) String() string {
	if c.CertFile != "" {
		return fmt.Sprintf("client certificate from %s (key %s)", c.CertFile, c.KeyFile)
	}
	return "client certificate (key <redacted>)"
}

// Load reads and checks the pair now; call it at start to fail early.
func (c *ClientCert) Load() error {
	_, err := c.certificate()
	return err
}

// ConfigureTLS makes conf present the certificate on every handshake.
func (c *ClientCert) ConfigureTLS(conf *tls.Config) {
	conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return c.certificate()
	}
}

func (c *ClientCert) certificate() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.CertFile == "" {
		if c.current == nil {
			cert, err := ParseKeyPair(c.CertPEM, c.KeyPEM)
			if err != nil {
				return nil, err
			}
			c.current = cert
		}
		return c.current, nil
	}
	stamp, err := fileStamp(c.CertFile, c.KeyFile)
	if err != nil {
		if c.current != nil {
			return c.current, nil
		}
		return nil, err
	}
	if stamp == c.stamp && c.current != nil {
		return c.current, nil
	}
	certPEM, err1 := os.ReadFile(c.CertFile)
	keyPEM, err2 := os.ReadFile(c.KeyFile)
	cert, err := ParseKeyPair(certPEM, keyPEM)
	if err = errors.Join(err1, err2, err); err != nil {
		if c.current != nil {
			c.logger().Warn("client certificate files changed but do not hold a valid pair; keeping the previous one", zap.Error(err))
			return c.current, nil
		}
		return nil, err
	}
	if c.current != nil {
		c.logger().Info("client certificate reloaded from disk", zap.String("file", c.CertFile), zap.Time("not_after", cert.Leaf.NotAfter))
	}
	c.current, c.stamp = cert, stamp
	return cert, nil
}

func (c *ClientCert) logger() *zap.Logger {
	if c.Logger == nil {
		return zap.NewNop()
	}
	return c.Logger
}

func fileStamp(paths ...string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", st.ModTime().UnixNano(), st.Size())
	}
	return b.String(), nil
}

// DecodePEMOrBase64 accepts PEM, or base64 of PEM (detecting which), and
// returns PEM. Errors never quote the input: it may be a private key.
func DecodePEMOrBase64(v []byte) ([]byte, error) {
	s := strings.TrimSpace(string(v))
	if strings.HasPrefix(s, "-----BEGIN ") {
		return []byte(s + "\n"), nil
	}
	compact := strings.Join(strings.Fields(s), "")
	raw, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(compact); err != nil {
			return nil, errors.New("is neither PEM nor base64")
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(string(raw)), "-----BEGIN ") {
		return nil, errors.New("is base64, but what it encodes is not PEM")
	}
	return raw, nil
}

// ParseKeyPair checks a certificate and its private key (PEM) and returns
// the pair. Errors describe what is wrong without quoting either.
func ParseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("the certificate is not PEM")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("the certificate PEM holds a %q block, not a CERTIFICATE", block.Type)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate does not parse: %v", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("the private key is not PEM")
	}
	if !strings.Contains(kb.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("the key PEM holds a %q block, not a PRIVATE KEY", kb.Type)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, errors.New("the private key does not match the certificate")
		}
		return nil, errors.New("the private key does not parse (want PKCS#1, PKCS#8 or SEC 1 EC, unencrypted)")
	}
	pair.Leaf = leaf
	if now := time.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return &pair, nil
}
