package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runOnce runs the command with ctx already cancelled: it starts, prints its
// export lines, writes its files and stops.
func runOnce(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newCommand(&out, &errOut)
	cmd.SetArgs(args)
	cmd.SetOut(&errOut)
	cmd.SetErr(&errOut)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestPrincipalIdentityFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	stdout, stderr, err := runOnce(t, "--principal-identity", "t1route-pi", "--principal-identity", "cloud-provider", "--cert-dir", dir, "--search-lag", "2s")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, name := range []string{"t1route-pi", "cloud-provider"} {
		certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			t.Fatalf("%s.crt is not PEM", name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || cert.Subject.CommonName != name || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Fatalf("%s.crt: %v %+v", name, err, cert.Subject)
		}
		fi, err := os.Stat(filepath.Join(dir, name+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v, mode %v, want 0600", name, err, fi.Mode())
		}
		if !strings.Contains(stdout, "# principal identity "+name+": NSXT_CLIENT_CERT_FILE="+filepath.Join(dir, name+".crt")) {
			t.Fatalf("stdout does not say where %s's files are:\n%s", name, stdout)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if !strings.HasPrefix(line, "export ") && !strings.HasPrefix(line, "# ") {
			t.Fatalf("a line a shell would run: %q", line)
		}
	}
}

func TestBadPrincipalFlags(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"no cert dir":    {[]string{"--principal-identity", "pi"}, "--principal-identity needs --cert-dir"},
		"cert dir alone": {[]string{"--cert-dir", t.TempDir()}, "only used with --principal-identity"},
		"twice":          {[]string{"--principal-identity", "pi", "--principal-identity", "pi", "--cert-dir", t.TempDir()}, "given twice"},
		"bad name":       {[]string{"--principal-identity", "../x", "--cert-dir", t.TempDir()}, "may only hold letters"},
		"negative lag":   {[]string{"--search-lag", "-1s"}, "negative"},
		"not a duration": {[]string{"--search-lag", "soon"}, "invalid argument"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, stderr, err := runOnce(t, tc.args...)
			if err == nil || !strings.Contains(stderr+err.Error(), tc.want) {
				t.Fatalf("err %v, stderr %q; want %q", err, stderr, tc.want)
			}
		})
	}
}

// TestRouterFlags: --router creates a project Tier-1 or a VPC (and the
// project), NSXT_ROUTER_PATH is printed for the first --router when no
// --tier1 is given, and malformed routers and project users are refused.
func TestRouterFlags(t *testing.T) {
	const vpc = "/orgs/default/projects/tenant-a/vpcs/vpc-pods"
	stdout, stderr, err := runOnce(t, "--router", vpc, "--router", "/orgs/default/projects/tenant-a/infra/tier-1s/t1", "--project-user", "alice:pw:/orgs/default/projects/tenant-a")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "export NSXT_ROUTER_PATH="+vpc+"\n") {
		t.Fatalf("NSXT_ROUTER_PATH is not the first --router:\n%s", stdout)
	}
	if stdout, _, err := runOnce(t, "--tier1", "t1-x", "--router", vpc); err != nil || !strings.Contains(stdout, "NSXT_ROUTER_PATH=/infra/tier-1s/t1-x\n") {
		t.Fatalf("with --tier1, NSXT_ROUTER_PATH is not the Tier-1 (%v):\n%s", err, stdout)
	}
	for _, args := range [][]string{
		{"--router", "/orgs/default/projects/p/vpcs/"},
		{"--router", "/orgs/default/projects/p/segments/s"},
		{"--project-user", "alice"},
		{"--project-user", "alice:pw:/infra"},
	} {
		if _, stderr, err := runOnce(t, args...); err == nil || !strings.Contains(stderr, "nsxsim:") {
			t.Errorf("%v accepted (%v): %s", args, err, stderr)
		}
	}
}
