package builder

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var epoch = time.Unix(1700000000, 0)

func TestLayerIsReproducible(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Path: "/usr/local/bin/t1route", Mode: 0o755, Source: src},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/sbin/nologin\n")},
		Symlink("/bin", "usr/bin"),
		Dir("/tmp", 0o777|fs.ModeSticky),
	}
	reversed := []File{files[3], files[2], files[1], files[0]}
	digest := func(files []File, mtime time.Time) string {
		t.Helper()
		l, err := Layer(files, mtime)
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	first := digest(files, epoch)
	// The source file's own time and mode must not leak into the layer.
	if err := os.Chtimes(src, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := digest(reversed, epoch); got != first {
		t.Errorf("same files in another order (and a touched source) gave %s, want %s", got, first)
	}
	if got := digest(files, epoch.Add(time.Second)); got == first {
		t.Error("a different creation time gave the same digest: the time is not in the layer")
	}
	if got := digest(append(files, File{Path: "/etc/group", Mode: 0o644}), epoch); got == first {
		t.Error("an added file gave the same digest")
	}
}

func TestTarEntries(t *testing.T) {
	b, err := Tar([]File{
		{Path: "/usr/local/bin/t1route", Mode: 0o755, Data: []byte("x"), UID: 0},
		{Path: "/home/nonroot", Mode: fs.ModeDir | 0o750, UID: 65532, GID: 65532},
		Dir("/tmp", 0o777|fs.ModeSticky),
		Symlink("/lib", "usr/lib"),
	}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		mode     int64
		typ      byte
		uid      int
		link     string
		modified time.Time
	}
	got := map[string]entry{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, h.Name)
		got[h.Name] = entry{h.Mode, h.Typeflag, h.Uid, h.Linkname, h.ModTime}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s carries user/group names %q/%q", h.Name, h.Uname, h.Gname)
		}
	}
	want := []string{"home/", "home/nonroot/", "lib", "tmp/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/t1route"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("entries %v, want %v (sorted, parents added)", order, want)
	}
	checks := []struct {
		name string
		want entry
	}{
		{"usr/local/bin/t1route", entry{0o755, tar.TypeReg, 0, "", epoch}},
		{"home/nonroot/", entry{0o750, tar.TypeDir, 65532, "", epoch}},
		{"tmp/", entry{0o1777, tar.TypeDir, 0, "", epoch}},
		{"lib", entry{0o777, tar.TypeSymlink, 0, "usr/lib", epoch}},
		{"usr/local/", entry{0o755, tar.TypeDir, 0, "", epoch}},
	}
	for _, c := range checks {
		if e := got[c.name]; e.mode != c.want.mode || e.typ != c.want.typ || e.uid != c.want.uid || e.link != c.want.link || !e.modified.Equal(c.want.modified) {
			t.Errorf("%s = %+v, want %+v", c.name, e, c.want)
		}
	}
}

func TestTarRejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []File
		want  string
	}{
		{"relative path", []File{{Path: "etc/passwd", Mode: 0o644}}, "not absolute"},
		{"root", []File{Dir("/", 0o755)}, "names the root"},
		{"twice", []File{{Path: "/a", Mode: 0o644}, {Path: "/a", Mode: 0o600}}, "twice"},
		{"symlink without target", []File{{Path: "/a", Mode: fs.ModeSymlink}}, "no target"},
		{"device", []File{{Path: "/dev/null", Mode: fs.ModeDevice}}, "unsupported"},
		{"missing source", []File{{Path: "/a", Mode: 0o644, Source: "/nonexistent/t1route"}}, "nonexistent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Tar(c.files, epoch)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestNodeRef(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"ghcr.io/t1route/t1route:v1.2.3", "ghcr.io/t1route/t1route-node:v1.2.3", ""},
		{"127.0.0.1:5000/t1route:dev", "127.0.0.1:5000/t1route-node:dev", ""},
		{"t1route", "index.docker.io/library/t1route-node:latest", ""},
		{"ghcr.io/t1route/t1route@sha256:" + strings.Repeat("a", 64), "", "--node-image"},
		{"UPPER/case:x", "", "want registry/repository:tag"},
	} {
		got, err := NodeRef(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("NodeRef(%q) err = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NodeRef(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestUsrMerged(t *testing.T) {
	for in, want := range map[string]string{
		"/bin/dash": "/usr/bin/dash", "/lib64/ld-linux-x86-64.so.2": "/usr/lib64/ld-linux-x86-64.so.2",
		"/lib/x86_64-linux-gnu/libc.so.6": "/usr/lib/x86_64-linux-gnu/libc.so.6", "/sbin": "/usr/sbin",
		"/usr/bin/ovs-vsctl": "/usr/bin/ovs-vsctl", "/library/x": "/library/x", "/etc/default/x": "/etc/default/x",
	} {
		if got := UsrMerged(in); got != want {
			t.Errorf("UsrMerged(%q) = %q, want %q", in, got, want)
		}
	}
}
