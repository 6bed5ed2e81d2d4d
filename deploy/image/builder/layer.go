// Package builder builds t1route's container images without a Docker daemon,
// with go-containerregistry: layers are tar files written here, entry by
// entry, so the same inputs always give the same bytes and the same digest.
package builder

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one entry of a layer. Exactly one of Data, Source or Link says
// what a non-directory holds.
type File struct {
	Path     string      // absolute path in the image, e.g. /usr/local/bin/t1route
	Mode     fs.FileMode // permission bits, plus fs.ModeDir or fs.ModeSymlink
	UID, GID int
	Data     []byte // contents of a regular file
	Source   string // or: a file on this machine to read the contents from
	Link     string // target of a symlink
}

// Dir is a directory entry.
func Dir(p string, mode fs.FileMode) File { return File{Path: p, Mode: fs.ModeDir | mode} }

// Symlink is a symbolic link entry.
func Symlink(p, target string) File { return File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target} }

// Layer returns a reproducible gzip layer holding files: entries sorted by
// path, missing parent directories added (0755, root), every timestamp set
// to mtime, no user or group names, no host-specific header fields. The
// same files and mtime always give the same digest.
func Layer(files []File, mtime time.Time) (v1.Layer, error) {
	b, err := Tar(files, mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// Tar writes files as an uncompressed tar, as Layer describes.
func Tar(files []File, mtime time.Time) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p, err := clean(f.Path)
		if err != nil {
			return nil, err
		}
		f.Path = p
		if old, dup := entries[p]; dup && !(old.Mode.IsDir() && f.Mode.IsDir()) {
			return nil, fmt.Errorf("%s is in the layer twice", p)
		}
		entries[p] = f
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = Dir(dir, 0o755)
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, n := range names {
		f := entries[n]
		h := &tar.Header{Name: n, Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, ModTime: mtime}
		// tar encodes the special bits its own way.
		if f.Mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if f.Mode&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var data []byte
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		case f.Mode&fs.ModeSymlink != 0:
			if f.Link == "" {
				return nil, fmt.Errorf("symlink %s has no target", n)
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		case f.Mode.IsRegular():
			data = f.Data
			if f.Source != "" {
				var err error
				if data, err = os.ReadFile(f.Source); err != nil {
					return nil, fmt.Errorf("%s: %w", n, err)
				}
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		default:
			return nil, fmt.Errorf("%s: unsupported file mode %v", n, f.Mode)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// clean turns an absolute image path into the tar name form ("usr/bin/x").
func clean(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("image path %q is not absolute", p)
	}
	c := strings.TrimPrefix(path.Clean(p), "/")
	if c == "" || c == "." {
		return "", fmt.Errorf("image path %q names the root", p)
	}
	return c, nil
}
