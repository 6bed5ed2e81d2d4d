package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildELF compiles a tiny Go program, static or linked against libc, and
// returns the binary's path.
func buildELF(t *testing.T, cgo bool) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\nfunc main() {}\n"
	env := "CGO_ENABLED=0"
	if cgo {
		if _, err := exec.LookPath("gcc"); err != nil {
			t.Skip("no C compiler for a dynamically linked test binary")
		}
		src = "package main\n// #include <stdlib.h>\nimport \"C\"\nfunc main() { C.abs(1) }\n"
		env = "CGO_ENABLED=1"
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "prog", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "prog")
}

func TestCheckStatic(t *testing.T) {
	if err := CheckStatic(buildELF(t, false)); err != nil {
		t.Errorf("a CGO_ENABLED=0 binary: %v", err)
	}
	err := CheckStatic(buildELF(t, true))
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a cgo binary: err = %v, want dynamically linked", err)
	}
}

func TestCheckClosure(t *testing.T) {
	dyn := buildELF(t, true) // needs libc.so.6 and /lib64/ld-linux-x86-64.so.2
	prog := File{Path: "/usr/bin/prog", Mode: 0o755, Source: dyn}
	libc := File{Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Mode: 0o644, Data: []byte("libc")}
	loader := File{Path: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Mode: 0o755, Data: []byte("ld")}
	loaderLink := Symlink("/usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	sbin := Dir("/usr/sbin", 0o755) // /sbin links to it
	for _, c := range []struct {
		name  string
		files []File
		want  []string // substrings of the error; none: no error
	}{
		{"complete, through the /usr merge links", append(UsrMergeLinks(), sbin, prog, libc, loader, loaderLink), nil},
		{"no libc", append(UsrMergeLinks(), sbin, prog, loader, loaderLink), []string{"/usr/bin/prog: needs libc.so.6"}},
		{"no merge links: the interpreter path does not resolve", []File{prog, libc, loader, loaderLink},
			[]string{"program interpreter /lib64/ld-linux-x86-64.so.2", "symlink to /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}},
		{"dangling symlink", append(UsrMergeLinks(), sbin, prog, libc, loader, loaderLink, Symlink("/usr/bin/sh", "dash")), []string{"/usr/bin/sh: symlink to dash"}},
		{"static binary alone", []File{{Path: "/t1route", Mode: 0o755, Source: buildELF(t, false)}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckClosure(c.files)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
