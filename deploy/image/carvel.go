package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/t1route/t1route/deploy/image/builder"
	"github.com/t1route/t1route/deploy/packaging"
)

// carvelBundle builds the Carvel package's bundle for the images in set
// (controller, node): deploy/carvel/bundle with .imgpkg/images.yml
// locking them by digest and config/values-release.yaml making image
// default to the controller image built (the node image follows from it).
// Its reference is the package repository next to image's, same tag.
func carvelBundle(root, image, nodeImage string, set []builder.Named, version, revision, source string, created time.Time) (bundle v1.Image, ref string, err error) {
	var locked []builder.LockedImage
	for _, n := range set {
		d, err := builder.Digest(n.Image)
		if err != nil {
			return nil, "", err
		}
		locked = append(locked, builder.LockedImage{Ref: n.Ref, Digest: d})
	}
	t, err := name.NewTag(image)
	if err != nil {
		return nil, "", fmt.Errorf("image %q: %w", image, err)
	}
	repo := t.Context().Name()
	ref = repo[:strings.LastIndex(repo, "/")+1] + "t1route-package:" + t.TagStr()
	values := fmt.Sprintf("#! Written by make image: the images this bundle was built with (digests in .imgpkg/images.yml).\n"+
		"#@data/values\n---\nimage: %q\nnodeImage: %q\n", image, nodeImage)
	img, err := builder.Bundle(builder.BundleSpec{Dir: filepath.Join(root, packaging.CarvelDir, "bundle"), Images: locked, Values: []byte(values),
		Created: created, Labels: map[string]string{
			"org.opencontainers.image.title": "t1route-package", "org.opencontainers.image.description": "t1route's Carvel package bundle (imgpkg)",
			"org.opencontainers.image.source": source, "org.opencontainers.image.revision": revision, "org.opencontainers.image.version": version,
			"org.opencontainers.image.licenses": "Apache-2.0"}})
	if err != nil {
		return nil, "", err
	}
	return img, ref, nil
}

// writePackage writes the Package of deploy/carvel/package.yaml fetching
// the bundle n by digest (and its PackageMetadata) into dir.
func writePackage(root, dir string, n builder.Named) error {
	d, err := builder.Digest(n.Image)
	if err != nil {
		return err
	}
	t, err := name.NewTag(n.Ref)
	if err != nil {
		return err
	}
	pkg, err := os.ReadFile(filepath.Join(root, packaging.CarvelDir, "package.yaml"))
	if err != nil {
		return err
	}
	from := []byte("image: " + packaging.BundleRepo + ":latest")
	if !bytes.Contains(pkg, from) {
		return fmt.Errorf("%s/package.yaml does not fetch %s: run make packages", packaging.CarvelDir, from)
	}
	pkg = bytes.Replace(pkg, from, []byte("image: "+t.Context().Name()+"@"+d), 1)
	meta, err := os.ReadFile(filepath.Join(root, packaging.CarvelDir, "metadata.yaml"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.yaml"), pkg, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "metadata.yaml"), meta, 0o644)
}
