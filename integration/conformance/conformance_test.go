//go:build integration && e2e

package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/t1route/t1route/integration/cluster"
)

// TestConformance runs the Kubernetes e2e suite's networking specs
// (Focus; CISubset with CONFORMANCE_SUBSET=ci; or CONFORMANCE_FOCUS) against a cluster of real nodes
// (integration/cluster, as make cluster starts it) with t1route installed
// as the README says and the cluster's DNS running, with ginkgo and
// CONFORMANCE_PROCS (4) parallel processes. It names every failure and
// every skip with its reason, then prints
// `conformance: N passed, M failed, S skipped` (conformance-ci: for the subset). The suite's output,
// its JSON report and, after a failure, the cluster's logs go to
// CONFORMANCE_OUT.
//
// make conformance builds what it needs: make image's layout
// (CLUSTER_IMAGES), the Kubernetes binaries (make kube-bins) and the suite
// (suite/build.sh: e2e.test, ginkgo, agnhost).
func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestConformance needs root (a cluster of real nodes): run make conformance as root")
	}
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	suite := cacheDir(root)
	for _, b := range []string{"e2e.test", "ginkgo", "agnhost", "porter/localhost.key"} {
		if _, err := os.Stat(filepath.Join(suite, b)); err != nil {
			t.Fatalf("%s not in %s: run make conformance (it builds the suite with integration/conformance/suite/build.sh)", b, suite)
		}
	}
	layout := os.Getenv("CLUSTER_IMAGES")
	if layout == "" {
		t.Fatal("CLUSTER_IMAGES is not set: make conformance passes make image's layout (.cache/image/oci)")
	}
	focus, label := Focus, "conformance"
	if os.Getenv("CONFORMANCE_SUBSET") == "ci" {
		focus, label = CISubset, "conformance-ci"
	}
	focus = envOr("CONFORMANCE_FOCUS", focus)
	procs := envOr("CONFORMANCE_PROCS", "4")
	// The suite's whole run; specs it has not reached by then count failed.
	timeout := envOr("CONFORMANCE_TIMEOUT", "100m")
	out := envOr("CONFORMANCE_OUT", t.TempDir())
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	focusRE, err := regexp.Compile(focus)
	if err != nil {
		t.Fatalf("CONFORMANCE_FOCUS=%q: %v", focus, err)
	}
	failed := true
	defer func() {
		if failed {
			fmt.Printf("%s: 0 passed, 1 failed, 0 skipped (the run did not finish: see above)\n", label)
		}
	}()

	// The selection, listed without a cluster: every spec the focus
	// selects, the skipped ones included.
	listed, err := dryRun(ctx, suite, focusRE, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d specs selected by %s", len(listed), focus)

	start := time.Now()
	dir := t.TempDir()
	c, err := cluster.Up(ctx, cluster.Config{Dir: dir, Root: root, ImageLayout: layout, HideHostOVS: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	state := c.State()
	defer func() {
		if t.Failed() {
			saveLogs(t, dir, filepath.Join(out, "cluster-logs"))
		}
		if err := c.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
		if left := cluster.Leftovers(state); len(left) > 0 {
			t.Errorf("left behind after Down:\n  %s", strings.Join(left, "\n  "))
		}
	}()
	if err := c.InstallT1route(ctx); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []func(context.Context) error{c.WaitAgents, c.WaitController,
		func(ctx context.Context) error { return c.WaitDNS(ctx, 3*time.Minute) }} {
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	images, pkgs, err := BuildTestImages(ctx, suite, filepath.Join(c.BinDir(), "pause"), filepath.Join(suite, "debs"))
	if err != nil {
		t.Fatal(err)
	}
	repoList, err := PushTestImages(ctx, c.Registry, images)
	if err != nil {
		t.Fatal(err)
	}
	repoFile := filepath.Join(out, "repo-list.yaml")
	if err := os.WriteFile(repoFile, []byte(repoList), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, i := range images {
		t.Logf("image %s/%s:%s: %s", c.Registry, i.Repo, i.Tag, i.What)
	}
	t.Logf("Debian packages in the test images: %s", strings.Join(pkgs, " "))
	t.Logf("cluster up, t1route and DNS Ready, test images pushed in %.0f s", time.Since(start).Seconds())

	runStart := time.Now()
	report := filepath.Join(out, "report.json")
	os.Remove(report)
	args := []string{"--procs=" + procs, "--focus=" + focus, "--skip=" + SkipPattern(Skips), "--timeout=" + timeout, "--no-color",
		"--json-report=" + report, filepath.Join(suite, "e2e.test"), "--",
		"--provider=skeleton", "--kubeconfig=" + c.Kubeconfig, "--report-dir=" + out, "--disable-log-dump",
		"--dns-domain=" + cluster.ClusterDomain, "--e2e-verify-service-account=true"}
	run := exec.CommandContext(ctx, filepath.Join(suite, "ginkgo"), args...)
	run.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoFile, "KUBECONFIG="+c.Kubeconfig)
	logFile, err := os.Create(filepath.Join(out, "e2e.log"))
	if err != nil {
		t.Fatal(err)
	}
	run.Stdout, run.Stderr = logFile, logFile
	runErr := run.Run()
	logFile.Close()
	took := time.Since(runStart)
	f, err := os.Open(report)
	if err != nil {
		t.Fatalf("ginkgo (%v) wrote no report: the end of %s:\n%s", runErr, logFile.Name(), tail(logFile.Name(), 4000))
	}
	defer f.Close()
	ran, err := ParseReport(f, focusRE, Skips)
	if err != nil {
		t.Fatal(err)
	}
	results := Merge(listed, ran, Skips)
	var sum bytes.Buffer
	fmt.Fprintf(&sum, "%s: %d specs selected (%s); the suite ran %.1f min with %s ginkgo processes, after %.1f min for the cluster, t1route, DNS and the test images\n",
		label, len(results), focus, took.Minutes(), procs, runStart.Sub(start).Minutes())
	Summary(&sum, label, results)
	os.Stdout.Write(sum.Bytes())
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), sum.Bytes(), 0o644); err != nil {
		t.Error(err)
	}
	failed = false
	_, fl, _ := Count(results)
	if fl > 0 {
		t.Errorf("%d of %d specs failed (ginkgo: %v); the suite's output: %s", fl, len(results), runErr, logFile.Name())
	}
}

// dryRun lists the specs focus selects (ginkgo's dry run writes them all
// to its report as passed).
func dryRun(ctx context.Context, suite string, focus *regexp.Regexp, out string) ([]Result, error) {
	report := filepath.Join(out, "selection.json")
	cmd := exec.CommandContext(ctx, filepath.Join(suite, "e2e.test"), "--ginkgo.dry-run", "--ginkgo.focus="+focus.String(),
		"--ginkgo.json-report="+report, "--ginkgo.no-color", "--provider=skeleton")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("e2e.test --ginkgo.dry-run: %w\n%s", err, tailBytes(stderr.Bytes(), 3000))
	}
	f, err := os.Open(report)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	listed, err := ParseReport(f, focus, nil)
	if err != nil {
		return nil, err
	}
	if len(listed) == 0 {
		return nil, fmt.Errorf("the focus %q selects no spec of e2e.test", focus)
	}
	return listed, nil
}

// saveLogs copies the cluster's logs (its logs folder) to dst.
func saveLogs(t *testing.T, dir, dst string) {
	if out, err := exec.Command("cp", "-r", filepath.Join(dir, "logs"), dst).CombinedOutput(); err != nil {
		t.Logf("saving the cluster's logs: %v %s", err, out)
		return
	}
	t.Logf("the cluster's logs: %s", dst)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tailBytes(b, n)
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
