//go:build linux

package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/t1route/t1route/deploy/image/builder"
)

// startRegistry serves an in-memory OCI registry (go-containerregistry's
// pkg/registry) on this machine's loopback; each node reaches it at the
// same address, so image references are the same everywhere.
func (c *Cluster) startRegistry() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.registry = &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go c.registry.Serve(ln) //nolint:errcheck
	c.Registry = ln.Addr().String()
	return nil
}

// pushPause builds the pod sandbox image from ./integration/cluster/pause
// and pushes it; containerd's sandbox_image points at it.
func (c *Cluster) pushPause(ctx context.Context) error {
	if err := builder.GoBuild(ctx, c.cfg.Root, c.binDir, nil, "./integration/cluster/pause"); err != nil {
		return err
	}
	epoch := time.Unix(0, 0)
	l, err := builder.Layer([]builder.File{{Path: "/pause", Mode: 0o755, Source: filepath.Join(c.binDir, "pause")}}, epoch)
	if err != nil {
		return err
	}
	img, err := builder.BuildImage(builder.Spec{Layers: []builder.NamedLayer{{Layer: l, CreatedBy: "pause"}},
		Entrypoint: []string{"/pause"}, Created: epoch})
	if err != nil {
		return err
	}
	c.PauseImage = c.Registry + "/pause:t1route"
	return builder.Push(ctx, c.PauseImage, img)
}

// pushLayout pushes every image of an OCI layout (make image writes one)
// to the registry under its repository's last path element and tag
// (ghcr.io/t1route/t1route:v1 -> 127.0.0.1:PORT/t1route:v1); it returns
// the references pushed, by repository name.
func (c *Cluster) pushLayout(ctx context.Context, dir string) (map[string]string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w (make image writes it)", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	pushed := map[string]string{}
	for _, d := range m.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		if ref == "" {
			continue
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", ref, dir, err)
		}
		repo := tag.RepositoryStr()
		repo = repo[strings.LastIndex(repo, "/")+1:]
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		local := c.Registry + "/" + repo + ":" + tag.TagStr()
		if err := builder.Push(ctx, local, img); err != nil {
			return nil, err
		}
		pushed[repo] = local
	}
	return pushed, nil
}
