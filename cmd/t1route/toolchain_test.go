package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// goMod returns go.mod's go line and toolchain line (without "go"; "" if
// there is none).
func goMod(t *testing.T) (goLine, toolchain string) {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "toolchain go"); ok {
			toolchain = strings.TrimSpace(v)
		}
	}
	if goLine == "" {
		t.Fatal("go.mod has no go line")
	}
	return goLine, toolchain
}

// older reports whether Go version a (1.26.8) is older than b (1.26.11);
// ok is false if either is not a release version.
func older(a, b string) (less, ok bool) {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range 3 {
		var x, y int
		var err error
		if i < len(pa) {
			if x, err = strconv.Atoi(pa[i]); err != nil {
				return false, false
			}
		}
		if i < len(pb) {
			if y, err = strconv.Atoi(pb[i]); err != nil {
				return false, false
			}
		}
		if x != y {
			return x < y, true
		}
	}
	return false, true
}

// t1route is built only with the Go release whose standard library has the
// security fixes: go.mod's go line names it (a patch release, at least the
// toolchain line's), so that an older Go refuses to build ("go.mod requires
// go >= ...") instead of linking a standard library with known
// vulnerabilities. With `go 1.26.0` a local go1.26.8 and GOTOOLCHAIN=local
// built t1route (10 advisories in govulncheck -mode binary).
func TestGoLineIsThePatchedRelease(t *testing.T) {
	goLine, toolchain := goMod(t)
	if strings.Count(goLine, ".") != 2 || strings.HasSuffix(goLine, ".0") {
		t.Errorf("go.mod's go line %q names no patch release: name the patched one (e.g. 1.26.11), not the language version", goLine)
	}
	if toolchain != "" {
		if less, ok := older(goLine, toolchain); !ok || less {
			t.Errorf("go.mod's go line %s is older than its toolchain line go%s: a Go between them builds with the vulnerable standard library; raise the go line to %s",
				goLine, toolchain, toolchain)
		}
	}
}

// An installed Go older than go.mod's go line, with GOTOOLCHAIN=local (as
// `go env` says on CI's machines), fails with Go's own message naming the
// version, and builds nothing.
func TestOlderGoRefusesToBuild(t *testing.T) {
	want, _ := goMod(t)
	var olderGos []string
	seen := map[string]bool{}
	for _, dir := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/local/go/bin") {
		bin := filepath.Join(dir, "go")
		real, err := filepath.EvalSymlinks(bin)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		cmd := exec.Command(bin, "env", "GOVERSION")
		cmd.Dir = t.TempDir() // outside the module: go.mod does not stop it
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		out, err := cmd.Output()
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "go")
		if err != nil {
			continue
		}
		if less, ok := older(v, want); ok && less {
			olderGos = append(olderGos, bin)
		}
	}
	if len(olderGos) == 0 {
		t.Logf("no installed Go older than %s on PATH or in /usr/local/go: nothing to refuse here", want)
		return
	}
	for _, bin := range olderGos {
		out := filepath.Join(t.TempDir(), "t1route-cni")
		cmd := exec.Command(bin, "build", "-o", out, "./cmd/t1route-cni")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		msg, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s (older than %s) built t1route-cni with GOTOOLCHAIN=local", bin, want)
			continue
		}
		if !strings.Contains(string(msg), "requires go >= "+want) {
			t.Errorf("%s: want Go's message naming go >= %s, got %v:\n%s", bin, want, err, msg)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s left a binary", bin)
		}
		t.Logf("%s: %s", bin, strings.TrimSpace(string(msg)))
	}
}
