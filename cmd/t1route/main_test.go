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

// TestEveryFailureSaysWhy runs the root command in-process: every failure
// prints one line naming what failed and how to fix it, with the exit status
// a script can tell apart (2: the command line or configuration, 1: a failure).
func TestEveryFailureSaysWhy(t *testing.T) {
	cases := []struct {
		args      []string
		code      int
		wantInErr []string
	}{
		{[]string{"bogus"}, 2, []string{`t1route: unknown command "bogus"`, "see 't1route --help'"}},
		{[]string{"controler"}, 2, []string{`did you mean "controller"?`}},
		{[]string{"controller", "--bogus"}, 2, []string{"t1route controller: unknown flag: --bogus", "see 't1route controller --help'"}},
		{[]string{"gc", "--cluster"}, 2, []string{"t1route gc: flag needs an argument: --cluster"}},
		{[]string{"doctor", "--timeout", "abc"}, 2, []string{`t1route doctor: invalid argument "abc" for "--timeout"`}},
		{[]string{"routes", "lst"}, 2, []string{`unknown command "lst" for "t1route routes"; did you mean "list"?`}},
		{[]string{"version", "extra"}, 2, []string{`unknown command "extra" for "t1route version"`}},
		{[]string{"routes", "list", "--kubeconfig", "/nonexistent"}, 1, []string{"t1route routes list: no Kubernetes configuration", "/nonexistent", "give --kubeconfig"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := newRootCommand(&out, &errOut, envOf(configtest.ValidEnv()))
			root.SetArgs(tc.args)
			code := execute(root, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line on stderr, got %d:\n%s", len(lines), errOut.String())
			}
			for _, w := range tc.wantInErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("no %q in stderr:\n%s", w, errOut.String())
				}
			}
		})
	}
	// A group alone still shows its help, successfully.
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut, envOf(nil))
	root.SetArgs([]string{"routes"})
	if code := execute(root, &errOut); code != 0 || !strings.Contains(out.String(), "list") {
		t.Fatalf("routes: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

func TestDescribeRoute(t *testing.T) {
	if got := describeRoute("n1", "100.96.1.0/24", ""); strings.Contains(got, "via") || !strings.Contains(got, "no next hop") {
		t.Errorf("node without address: %q", got)
	}
	if got := describeRoute("n1", "100.96.1.0/24", "198.51.100.7"); got != "route node=n1 100.96.1.0/24 via 198.51.100.7" {
		t.Errorf("%q", got)
	}
}

// TestOneShotUnreachableManagerSaysWhy: routes list against a port where
// nothing listens says so in t1route's words, in one line without colour.
func TestOneShotUnreachableManagerSaysWhy(t *testing.T) {
	env := configtest.ValidEnv()
	env["NSXT_MANAGER_HOST"] = "127.0.0.1:1"
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut, envOf(env))
	root.SetArgs([]string{"routes", "list", "--all-clusters", "--timeout", "20s"})
	code := execute(root, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "refused the connection") || strings.Contains(errOut.String(), "\x1b[") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}
