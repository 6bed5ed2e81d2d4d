package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/config/configtest"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// run executes the root command with args and an environment.
func run(env map[string]string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut, envOf(env))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	out, errOut, err := run(configtest.ValidEnv(), "validate-config", "--cluster-cidr", "100.64.0.0/16", "--router-path", "/infra/tier-1s/from-flag")
	if err != nil {
		t.Fatal(err, errOut)
	}
	if !strings.Contains(out, "cluster CIDRs:  100.64.0.0/16") || !strings.Contains(out, "/infra/tier-1s/from-flag   (flag)") {
		t.Fatalf("flags did not win:\n%s", out)
	}
}

func TestValidateConfigCommand(t *testing.T) {
	out, _, err := run(configtest.ValidEnv(), "validate-config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "configuration is valid") || !strings.Contains(out, "NSXT_PASSWORD               <redacted>") || strings.Contains(out, "Very-S3cret-pw") {
		t.Fatalf("output:\n%s", out)
	}

	// Invalid: exit 2, one line per problem, no secret even one that fails to parse.
	env := configtest.ValidEnv()
	env["NSXT_CLIENT_CERT_KEY_DATA"] = "Unparseable-S3cret-key"
	env["CLUSTER_CIDR"] = "nope"
	out, errOut, err := run(env, "validate-config")
	if ee, ok := err.(exitError); !ok || ee.code != 2 {
		t.Fatalf("exit = %v", err)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "invalid configuration: 3 problem(s)") {
		t.Fatalf("stderr:\n%s", errOut)
	}
	if strings.Contains(out+errOut, "Unparseable-S3cret-key") || strings.Contains(out+errOut, "Very-S3cret-pw") {
		t.Fatalf("a secret was printed:\n%s%s", out, errOut)
	}
}
