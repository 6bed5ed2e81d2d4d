package builder

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// BundleLabel marks an image as an imgpkg bundle (imgpkg's own label).
const BundleLabel = "dev.carvel.imgpkg.bundle"

// LockedImage is an image a bundle's templates name by Ref (a tag), and
// the digest it was built with.
type LockedImage struct {
	Ref    string // e.g. ghcr.io/t1route/t1route:v1, as the templates render it
	Digest string // sha256:…
}

// ImagesLock is .imgpkg/images.yml: each image by digest, with kbld's id
// annotation naming the reference the templates use, so that kbld (given
// this file) resolves them without asking a registry, and imgpkg copy
// relocates them with the bundle.
func ImagesLock(images []LockedImage) ([]byte, error) {
	var b strings.Builder
	b.WriteString("---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n")
	for _, img := range images {
		t, err := name.NewTag(img.Ref)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w (want registry/repository:tag)", img.Ref, err)
		}
		if _, err := v1.NewHash(img.Digest); err != nil {
			return nil, fmt.Errorf("image %q: digest %q: %w", img.Ref, img.Digest, err)
		}
		fmt.Fprintf(&b, "- image: %s@%s\n  annotations:\n    kbld.carvel.dev/id: %s\n", t.Context().Name(), img.Digest, img.Ref)
	}
	return []byte(b.String()), nil
}

// BundleSpec says what a bundle holds.
type BundleSpec struct {
	Dir     string // the bundle's files (deploy/carvel/bundle): config/… is copied as is
	Images  []LockedImage
	Values  []byte            // optional: written as config/values-release.yaml (ytt data values pinning the images)
	Labels  map[string]string // image labels, besides BundleLabel
	Created time.Time
}

// Bundle builds an imgpkg bundle: one layer with Dir's files and
// .imgpkg/images.yml, the bundle label, no entrypoint. Equal inputs give
// equal digests.
func Bundle(spec BundleSpec) (v1.Image, error) {
	var files []File
	err := filepath.WalkDir(spec.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(spec.Dir, p)
		if err != nil || rel == "." {
			return err
		}
		if strings.HasPrefix(rel, ".imgpkg") {
			return fmt.Errorf("%s: .imgpkg is written by the build, not kept in %s", p, spec.Dir)
		}
		if e.IsDir() {
			files = append(files, Dir("/"+filepath.ToSlash(rel), 0o755))
			return nil
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		files = append(files, File{Path: "/" + filepath.ToSlash(rel), Mode: 0o644, Source: p})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bundle folder %s is empty (make packages writes it)", spec.Dir)
	}
	lock, err := ImagesLock(spec.Images)
	if err != nil {
		return nil, err
	}
	files = append(files, File{Path: "/.imgpkg/images.yml", Mode: 0o644, Data: lock})
	if spec.Values != nil {
		files = append(files, File{Path: "/config/values-release.yaml", Mode: 0o644, Data: spec.Values})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	l, err := Layer(files, spec.Created)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{BundleLabel: "true"}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	return BuildImage(Spec{Layers: []NamedLayer{{l, "t1route Carvel package bundle: config/ (ytt templates), .imgpkg/images.yml"}},
		Labels: labels, Created: spec.Created})
}

// ReadBundleFile returns one file of a bundle image (e.g. ".imgpkg/images.yml").
func ReadBundleFile(img v1.Image, path string) ([]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: %w", path, os.ErrNotExist)
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimPrefix(h.Name, "./") == path {
			return io.ReadAll(tr)
		}
	}
}
