//go:build integration && e2e

package cluster

import (
	"archive/tar"
	"context"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/t1route/t1route/deploy/image/builder"
)

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildImages builds t1route's images as make image does, into a fresh
// work directory (fresh go build outputs), sharing the downloaded
// packages of .cache/image.
func buildImages(t testing.TB, version string) *builder.Images {
	t.Helper()
	root := repoRoot(t)
	start := time.Now()
	imgs, err := builder.Build(context.Background(), builder.Options{Root: root, WorkDir: t.TempDir(),
		DebCache: filepath.Join(root, ".cache", "image", "work", "debs"), Version: version, Revision: "0123456789abcdef",
		Created: time.Unix(1795460239, 0), Source: "https://github.com/t1route/t1route"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images built in %.1f s", time.Since(start).Seconds())
	return imgs
}

func digest(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := builder.Digest(img)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImages builds the images twice and checks what users rely on: the
// same digests; the controller's user, labels and entrypoint; binaries
// that run from the images' own files; Open vSwitch and a shell in the
// node image; CA roots built into t1route.
func TestImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestImages runs the images' binaries in a chroot: run it as root (make test-cluster)")
	}
	a, b := buildImages(t, "v9.9.9-test"), buildImages(t, "v9.9.9-test")
	for _, c := range []struct {
		name string
		x, y v1.Image
	}{{"t1route", a.Controller, b.Controller}, {"t1route-node", a.Node, b.Node}} {
		dx, dy := digest(t, c.x), digest(t, c.y)
		if dx != dy {
			t.Errorf("%s: built twice from the same sources, digests differ: %s and %s", c.name, dx, dy)
		}
		size, _ := builder.CompressedSize(c.x)
		t.Logf("%s digest: %s (%.1f MB compressed)", c.name, dx, float64(size)/1e6)
	}
	if digest(t, a.Controller) == digest(t, buildImagesQuick(t, "v9.9.10-test")) {
		t.Error("another version gave the same controller digest: the version is not in the image")
	}

	cf, err := a.Controller.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("controller image user %q, want 65532:65532 (non-root)", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/t1route" {
		t.Errorf("controller entrypoint %v", cf.Config.Entrypoint)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": "v9.9.9-test", "org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.source": "https://github.com/t1route/t1route", "org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created": "2026-11-23T18:57:19Z", "org.opencontainers.image.title": "t1route"} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(time.Unix(1795460239, 0)) {
		t.Errorf("config created %v, want the given source time", cf.Created)
	}
	ncf, err := a.Node.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ncf.Config.Labels["org.opencontainers.image.description"], "openvswitch-switch=") {
		t.Errorf("node image description does not name its Debian packages: %q", ncf.Config.Labels["org.opencontainers.image.description"])
	}

	ctrl := extract(t, a.Controller)
	if out := chroot(t, ctrl, "/usr/local/bin/t1route", "version"); strings.TrimSpace(out) != "t1route v9.9.9-test" {
		t.Errorf("t1route version in the controller image: %q", out)
	}
	if _, err := os.Stat(filepath.Join(ctrl, "etc/ssl")); err == nil {
		t.Error("the controller image has /etc/ssl: expected an empty base with the roots in the binary")
	}
	bi, err := buildinfo.ReadFile(filepath.Join(ctrl, "usr/local/bin/t1route"))
	if err != nil {
		t.Fatal(err)
	}
	roots := false
	for _, d := range bi.Deps {
		roots = roots || d.Path == "golang.org/x/crypto/x509roots/fallback"
	}
	if !roots {
		t.Error("t1route does not link golang.org/x/crypto/x509roots/fallback: no CA roots for NSX in an image without /etc/ssl")
	}
	if bi.Settings != nil {
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" && s.Value != "0" {
				t.Errorf("t1route built with CGO_ENABLED=%s", s.Value)
			}
		}
	}

	node := extract(t, a.Node)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/sbin/ovs-vswitchd", "--version"}, "Open vSwitch"},
		{[]string{"/usr/sbin/ovsdb-server", "--version"}, "Open vSwitch"},
		{[]string{"/usr/bin/ovs-vsctl", "--version"}, "Open vSwitch"},
		{[]string{"/usr/bin/ovs-ofctl", "--version"}, "Open vSwitch"},
		{[]string{"/usr/bin/ovsdb-tool", "--version"}, "Open vSwitch"},
		{[]string{"/bin/sh", "-c", "test -s /usr/share/openvswitch/vswitch.ovsschema && test -x /usr/local/bin/start-ovs && echo present"}, "present"},
		{[]string{"/bin/sh", "-c", "echo shell works"}, "shell works"},
		{[]string{"/usr/local/bin/t1route", "version"}, "t1route v9.9.9-test"},
		{[]string{"/usr/local/bin/t1route-cni", "--version"}, "t1route-cni v9.9.9-test"},
		// CNI plugins answer VERSION with the versions of the spec they speak.
		{[]string{"/bin/sh", "-c", "CNI_COMMAND=VERSION /usr/local/bin/portmap"}, `"supportedVersions"`},
	} {
		if out := chroot(t, node, c.args...); !strings.Contains(out, c.want) {
			t.Errorf("%v in the node image: %q lacks %q", c.args, out, c.want)
		}
	}
}

// buildImagesQuick builds only the controller image for another version.
func buildImagesQuick(t testing.TB, version string) v1.Image {
	return buildImages(t, version).Controller
}

// extract writes the image's filesystem into a temporary directory.
func extract(t testing.TB, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755) //nolint:errcheck
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755) //nolint:errcheck
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755) //nolint:errcheck
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
}

// chroot runs a command with the image's filesystem as root, as a
// container runtime would (without the namespaces).
func chroot(t testing.TB, root string, args ...string) string {
	t.Helper()
	out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
	if err != nil {
		t.Errorf("chroot %v: %v\n%s", args, err, out)
	}
	return string(out)
}
