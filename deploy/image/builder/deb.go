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
	"slices"
	"strings"
)

// Deb is a Debian package whose files (some of them) go into a layer, at
// an exact version: the .deb file's SHA-256 is pinned, so an image is built
// from the packages that were reviewed, never from whatever the apt sources
// offer that day.
type Deb struct {
	Package string
	Version string // Debian version, epoch included (1:1.2.13.dfsg-1)
	SHA256  string // of the .deb file, hex
	// Keep selects the files to take, by their path in the image (after the
	// /usr merge); nil keeps every regular file and symlink.
	Keep func(p string) bool
}

// FetchedDeb is a downloaded package.
type FetchedDeb struct {
	Package, Version, File string
}

// offeredDeb is one line of `apt-get download --print-uris`.
type offeredDeb struct {
	Package, Version, File, SHA256 string
}

// parsePrintURIs reads `apt-get download --print-uris` output, lines of
// 'URI' file_version_arch.deb size SHA256:hex.
func parsePrintURIs(out []byte) []offeredDeb {
	var offered []offeredDeb
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "'") || !strings.HasPrefix(f[3], "SHA256:") {
			continue
		}
		pkg, rest, _ := strings.Cut(f[1], "_")
		version, _, _ := strings.Cut(rest, "_")
		offered = append(offered, offeredDeb{Package: pkg, Version: strings.ReplaceAll(version, "%3a", ":"), File: f[1],
			SHA256: strings.TrimPrefix(f[3], "SHA256:")})
	}
	return offered
}

// checkPins matches what apt offers against the pins: one file per pinned
// package, at its version, with its SHA-256. The error names each package
// that differs and how to update the pins.
func checkPins(pins []Deb, offered []offeredDeb) error {
	by := map[string]offeredDeb{}
	for _, o := range offered {
		by[o.Package] = o
	}
	var problems []string
	for _, p := range pins {
		o, ok := by[p.Package]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s=%s: apt offers no file for it", p.Package, p.Version))
		case o.Version != p.Version:
			problems = append(problems, fmt.Sprintf("%s: pinned %s, apt offers %s", p.Package, p.Version, o.Version))
		case !strings.EqualFold(o.SHA256, p.SHA256):
			problems = append(problems, fmt.Sprintf("%s=%s: pinned SHA256 %s, apt's index says %s (the same version with different content: do not build from it)",
				p.Package, p.Version, p.SHA256, o.SHA256))
		}
		delete(by, p.Package)
	}
	for _, o := range by {
		problems = append(problems, fmt.Sprintf("%s=%s: offered but not pinned", o.Package, o.Version))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("the node image's Debian packages differ from their pins (deploy/image/builder/t1route.go):\n  %s\n"+
			"review the new versions (Debian security advisories), then update the pins: go run ./deploy/image --print-deb-pins", strings.Join(problems, "\n  "))
	}
	return nil
}

// FetchDebs downloads the pinned packages into cacheDir with apt-get
// download, after checking that apt's index offers exactly the pinned
// versions and files, and verifies each file's SHA-256 against its pin;
// files already there and intact are reused. It fails, naming each
// difference, when a pinned version is no longer offered (Debian replaced
// it: update the pins) or its file differs.
func FetchDebs(ctx context.Context, cacheDir string, pins []Deb) ([]FetchedDeb, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, errors.New("apt-get not found: the Open vSwitch layer is built from Debian packages; build on Debian (or Ubuntu) with apt sources")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	var want []string
	for _, p := range pins {
		want = append(want, p.Package+"="+p.Version)
	}
	printURIs := func() ([]byte, error) {
		return exec.CommandContext(ctx, "apt-get", append([]string{"download", "--print-uris"}, want...)...).CombinedOutput()
	}
	out, err := printURIs()
	updated := false
	if err != nil && aptIndexMayBeStale(out) && os.Geteuid() == 0 {
		// A machine's package index can be older than the pins (a fresh CI
		// machine's is whatever its image shipped): refresh it once, as the
		// Makefile does before installing packages, and ask again.
		if uout, uerr := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); uerr != nil {
			return nil, fmt.Errorf("apt-get update (the package index does not offer the pinned versions): %w\n%s", uerr, uout)
		}
		updated = true
		out, err = printURIs()
	}
	if err != nil {
		// apt's own errors ("E: Version '3.0.20-1~deb12u1' for 'libssl3' was not found"), not the list of what it found.
		var aptErrs []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "E: ") {
				aptErrs = append(aptErrs, l)
			}
		}
		if len(aptErrs) == 0 {
			aptErrs = []string{strings.TrimSpace(string(out))}
		}
		index := "if nothing is offered at all, is the package index there (apt-get update as root)?"
		if updated {
			index = "the package index was refreshed (apt-get update) before this answer."
		}
		return nil, fmt.Errorf("the node image's pinned Debian packages: apt-get download --print-uris: %w:\n  %s\n"+
			"a pinned version Debian replaced is no longer offered: review the new one (Debian security advisories), then update the pins in "+
			"deploy/image/builder/t1route.go (go run ./deploy/image --print-deb-pins); %s",
			err, strings.Join(aptErrs, "\n  "), index)
	}
	offered := parsePrintURIs(out)
	if err := checkPins(pins, offered); err != nil {
		return nil, err
	}
	var fetched []FetchedDeb
	var missing []string
	sums := map[string]string{}
	for _, p := range pins {
		for _, o := range offered {
			if o.Package == p.Package {
				file := filepath.Join(cacheDir, o.File)
				fetched = append(fetched, FetchedDeb{Package: p.Package, Version: p.Version, File: file})
				sums[file] = p.SHA256
				if ok, _ := sha256Is(file, p.SHA256); !ok {
					missing = append(missing, p.Package+"="+p.Version)
				}
			}
		}
	}
	if len(missing) > 0 {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q"}, missing...)...)
		cmd.Dir = cacheDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download: %w\n%s", err, out)
		}
		for _, d := range fetched {
			if ok, err := sha256Is(d.File, sums[d.File]); !ok {
				return nil, fmt.Errorf("%s: its SHA-256 differs from the pin %s after download (%v): refusing to build from it", d.File, sums[d.File], err)
			}
		}
	}
	return fetched, nil
}

// FetchOfferedDebs downloads what the apt sources offer now for the named
// packages (their candidate versions), each verified against apt's index:
// for test images, built afresh and never shipped. The node image's
// packages are pinned (FetchDebs).
func FetchOfferedDebs(ctx context.Context, cacheDir string, names []string) ([]FetchedDeb, error) {
	var debs []Deb
	for _, n := range names {
		debs = append(debs, Deb{Package: n})
	}
	pins, err := OfferedPins(ctx, debs)
	if err != nil {
		return nil, err
	}
	return FetchDebs(ctx, cacheDir, pins)
}

// aptIndexMayBeStale says whether apt's answer is that a package or
// version is unknown: what an index older than the pins answers.
func aptIndexMayBeStale(out []byte) bool {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") && (strings.Contains(l, "was not found") || strings.Contains(l, "Unable to locate package")) {
			return true
		}
	}
	return false
}

// OfferedPins are the pins for what the apt sources offer now for the
// packages of pins (the candidate versions), for review and update.
func OfferedPins(ctx context.Context, pins []Deb) ([]Deb, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, errors.New("apt-get not found: the images' Debian packages come from apt sources; build on Debian (or Ubuntu)")
	}
	var names []string
	for _, p := range pins {
		names = append(names, p.Package)
	}
	out, err := exec.CommandContext(ctx, "apt-get", append([]string{"download", "--print-uris"}, names...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris: %w\n%s", err, out)
	}
	var now []Deb
	for _, o := range parsePrintURIs(out) {
		now = append(now, Deb{Package: o.Package, Version: o.Version, SHA256: o.SHA256})
	}
	return now, nil
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
