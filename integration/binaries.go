//go:build integration

package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// BuildBinaries builds t1route, t1route-cni and nsxsim into a temporary
// directory, stamped with BuildCommit as the Makefile stamps them.
func BuildBinaries(t TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	out := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/t1route/t1route/podroute/version.Commit="+BuildCommit(root), "-o", out+"/", "./cmd/t1route", "./cmd/t1route-cni", "./cmd/nsxsim")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// StartNSXSim runs the nsxsim binary and returns the NSXT_* environment it prints.
func StartNSXSim(t TB, bin string, args ...string) []string {
	cmd := exec.Command(filepath.Join(bin, "nsxsim"), args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	var env []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		env = append(env, strings.ReplaceAll(line, "'", ""))
		if strings.HasPrefix(line, "NSXT_ROOT_CA_DATA_B64=") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if len(env) < 5 {
		t.Fatalf("nsxsim printed %q", env)
	}
	return env
}

// BuildCommit is the commit the Makefile stamps into t1route (COMMIT ?= git
// describe --always --dirty --abbrev=12 --exclude '*'), or $COMMIT.
func BuildCommit(root string) string {
	if v := os.Getenv("COMMIT"); v != "" {
		return v
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude", "*")
	cmd.Dir = root
	b, _ := cmd.Output()
	return strings.TrimSpace(string(b))
}
