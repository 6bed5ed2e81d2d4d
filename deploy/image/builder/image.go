package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec describes one image: its layers, bottom first, and its runtime
// configuration.
type Spec struct {
	Layers     []NamedLayer
	User       string // "uid:gid"; empty means root
	Entrypoint []string
	Cmd        []string
	Env        []string
	Labels     map[string]string
	Created    time.Time // the image's creation time: take it from the source (commit time), never the clock
	OS, Arch   string    // default linux/amd64
}

// NamedLayer is a layer and the one-line history entry that says what it holds.
type NamedLayer struct {
	Layer     v1.Layer
	CreatedBy string
}

// BuildImage assembles an OCI image from spec. Nothing in it depends on the
// clock or on the machine, so equal specs give equal digests.
func BuildImage(spec Spec) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: spec.Created.UTC().Truncate(time.Second)}
	var adds []mutate.Addendum
	for _, l := range spec.Layers {
		adds = append(adds, mutate.Addendum{Layer: l.Layer, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: l.CreatedBy, Comment: "t1route deploy/image"}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = spec.OS, spec.Arch
	if cf.OS == "" {
		cf.OS = "linux"
	}
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Created = created
	cf.Config = v1.Config{User: spec.User, Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env, Labels: spec.Labels}
	return mutate.ConfigFile(img, cf)
}

// Named is an image and the reference it is published as.
type Named struct {
	Ref   string
	Image v1.Image
}

// WriteLayout replaces dir with an OCI image layout holding images, in
// order, each annotated with its reference (org.opencontainers.image.ref.name).
func WriteLayout(dir string, images []Named) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	for _, n := range images {
		if err := lp.AppendImage(n.Image, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": n.Ref})); err != nil {
			return fmt.Errorf("write %s to %s: %w", n.Ref, dir, err)
		}
	}
	return nil
}

// NodeRef is the node image's reference for a controller image reference:
// the repository with "-node" appended, the same tag
// (ghcr.io/t1route/t1route:v1 -> ghcr.io/t1route/t1route-node:v1).
func NodeRef(controllerRef string) (string, error) {
	r, err := name.ParseReference(controllerRef)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w (want registry/repository:tag)", controllerRef, err)
	}
	t, ok := r.(name.Tag)
	if !ok {
		return "", fmt.Errorf("image reference %q has a digest, not a tag: give the node image with --node-image", controllerRef)
	}
	return t.Context().Name() + "-node:" + t.TagStr(), nil
}

// CompressedSize is the sum of the image's layer, config and manifest
// sizes: what a registry stores and a node pulls.
func CompressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	total := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}

// Push uploads img as ref, with the credentials of the Docker config
// ($DOCKER_CONFIG or ~/.docker/config.json) when there are any. Registries
// on localhost or 127.0.0.1 are spoken to over plain HTTP.
func Push(ctx context.Context, ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w (want registry/repository:tag)", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Digest is the image's manifest digest ("sha256:…").
func Digest(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
