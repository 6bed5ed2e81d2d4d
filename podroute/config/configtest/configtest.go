// Package configtest holds fixtures for tests of code that reads t1route's
// NSXT_* configuration: a valid environment and certificates to configure.
package configtest

import (
	"encoding/base64"
	"testing"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// ValidEnv is a complete, valid configuration with username and password
// authentication (the password is Very-S3cret-pw). Each call returns a new
// map for the test to change.
func ValidEnv() map[string]string {
	return map[string]string{
		"NSXT_POD_ROUTING_ENABLED": "true",
		"NSXT_MANAGER_HOST":        "nsx.example.com",
		"NSXT_ROUTER_PATH":         "/infra/tier-1s/t1-routable",
		"CLUSTER_CIDR":             "100.96.0.0/11",
		"NSXT_USERNAME":            "admin",
		"NSXT_PASSWORD":            "Very-S3cret-pw",
	}
}

// PKI is a CA, a client certificate it signed with its key, and a second
// key that matches no certificate.
type PKI struct {
	CAPEM, CertPEM, KeyPEM, OtherKeyPEM []byte
}

// NewPKI issues a PKI (the simulator's CA, so NSX accepts the certificate).
func NewPKI(t testing.TB) PKI {
	t.Helper()
	sim, err := nsxsim.New(nsxsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := sim.IssueClientCert("t1route")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := sim.IssueClientCert("other")
	if err != nil {
		t.Fatal(err)
	}
	return PKI{CAPEM: sim.CACertPEM(), CertPEM: cert, KeyPEM: key, OtherKeyPEM: other}
}

// B64 is b in standard base64, as NSXT_*_DATA variables take it.
func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
