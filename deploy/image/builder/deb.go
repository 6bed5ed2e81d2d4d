package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Deb is a Debian package whose files (some of them) go into a layer.
type Deb struct {
	Package string
	// Keep selects the files to take, by their path in the image (after the
	// /usr merge); nil keeps every regular file and symlink.
	Keep func(p string) bool
}

// FetchedDeb is a downloaded package.
type FetchedDeb struct {
	Package, Version, File string
}

// FetchDebs downloads the packages, at the version this machine's apt
// sources offer (apt-get download), into cacheDir, verifying each file's
// SHA-256 against apt's index; files already there and intact are reused.
func FetchDebs(ctx context.Context, cacheDir string, pkgs []string) ([]FetchedDeb, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, errors.New("apt-get not found: the Open vSwitch layer is built from Debian packages; build on Debian (or Ubuntu) with apt sources")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "apt-get", append([]string{"download", "--print-uris"}, pkgs...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris %s: %w\n%s(is the package index there? apt-get update)", strings.Join(pkgs, " "), err, out)
	}
	// Lines: 'URI' file_version_arch.deb size SHA256:hex
	var fetched []FetchedDeb
	var missing []string
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "'") || !strings.HasPrefix(f[3], "SHA256:") {
			continue
		}
		file := f[1]
		pkg, rest, _ := strings.Cut(file, "_")
		version, _, _ := strings.Cut(rest, "_")
		version = strings.ReplaceAll(version, "%3a", ":")
		fetched = append(fetched, FetchedDeb{Package: pkg, Version: version, File: filepath.Join(cacheDir, file)})
		sums[file] = strings.TrimPrefix(f[3], "SHA256:")
		if ok, _ := sha256Is(filepath.Join(cacheDir, file), sums[file]); !ok {
			missing = append(missing, pkg+"="+version)
		}
	}
	if len(fetched) != len(pkgs) {
		return nil, fmt.Errorf("apt-get offered %d files for %d packages (%s):\n%s", len(fetched), len(pkgs), strings.Join(pkgs, " "), out)
	}
	if len(missing) > 0 {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q"}, missing...)...)
		cmd.Dir = cacheDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download: %w\n%s", err, out)
		}
		for _, d := range fetched {
			if ok, err := sha256Is(d.File, sums[filepath.Base(d.File)]); !ok {
				return nil, fmt.Errorf("%s: checksum differs from apt's index after download (%v)", d.File, err)
			}
		}
	}
	return fetched, nil
}

func sha256Is(file, want string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

// DebFiles returns the files of a .deb that keep selects, with paths moved
// under /usr as on a merged-/usr system (/bin, /sbin, /lib, /lib64), owned
// by root. Hard links become copies. It needs dpkg-deb.
func DebFiles(ctx context.Context, debFile string, keep func(string) bool) ([]File, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", debFile, err, strings.TrimSpace(stderr.String()))
	}
	var files []File
	data := map[string][]byte{} // for hard links
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", debFile, err)
		}
		p := UsrMerged("/" + strings.TrimPrefix(path.Clean(h.Name), "./"))
		if p == "/" || p == "/." {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			data[p] = b
			if keep == nil || keep(p) {
				files = append(files, File{Path: p, Mode: fs.FileMode(h.Mode).Perm(), Data: b})
			}
		case tar.TypeLink:
			target := UsrMerged("/" + strings.TrimPrefix(path.Clean(h.Linkname), "./"))
			b, ok := data[target]
			if !ok {
				return nil, fmt.Errorf("%s: hard link %s to %s, which comes later or not at all", debFile, p, target)
			}
			if keep == nil || keep(p) {
				files = append(files, File{Path: p, Mode: fs.FileMode(h.Mode).Perm(), Data: b})
			}
		case tar.TypeSymlink:
			if keep == nil || keep(p) {
				files = append(files, Symlink(p, h.Linkname))
			}
		}
	}
	return files, nil
}

// UsrMerged moves a path under /bin, /sbin, /lib or /lib64 to /usr.
func UsrMerged(p string) string {
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "/usr" + p
		}
	}
	return p
}

// UsrMergeLinks are the root symlinks of a merged-/usr system.
func UsrMergeLinks() []File {
	return []File{Symlink("/bin", "usr/bin"), Symlink("/sbin", "usr/sbin"), Symlink("/lib", "usr/lib"), Symlink("/lib64", "usr/lib64")}
}
