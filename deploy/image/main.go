// Command image builds t1route's container images without a Docker daemon
// (make image): t1route (the controller: static binaries on an empty base,
// user 65532) and t1route-node (the agent DaemonSet: the same binaries plus
// Open vSwitch from Debian packages), and the Carvel package's imgpkg
// bundle (deploy/carvel/bundle, with .imgpkg/images.yml locking both
// images by digest) as t1route-package. It writes an OCI image layout,
// prints each image's digest, writes the Package for that bundle to
// <out>/carvel/package.yaml, and with --push uploads them. Built twice from
// the same commit, the digests are equal.
//
//	go run ./deploy/image [--image registry/repo:tag] [--push]
//
// It lives outside cmd/ so that t1route itself never links
// go-containerregistry.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/t1route/t1route/deploy/image/builder"
	tree "github.com/t1route/t1route/podroute/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		image, nodeImage, out, version, revision, source string
		created                                          int64
		push, printPins                                  bool
	)
	flag.StringVar(&image, "image", "", "controller image reference (default ghcr.io/t1route/t1route:v<version>, as t1route render uses)")
	flag.StringVar(&nodeImage, "node-image", "", "node image reference (default: --image's repository with -node appended, same tag)")
	flag.StringVar(&out, "out", ".cache/image", "output folder: the OCI layout goes to <out>/oci, binaries and packages to <out>/work")
	flag.StringVar(&version, "version", tree.Version, "t1route version (default: this tree's, podroute/version; another only for tests that need two versions of one tree)")
	flag.StringVar(&revision, "revision", "", "source revision for the labels (default: git rev-parse HEAD)")
	flag.Int64Var(&created, "created", 0, "creation time, Unix seconds (default: $SOURCE_DATE_EPOCH, else the commit's time)")
	flag.StringVar(&source, "source", "https://github.com/t1route/t1route", "source repository URL for the labels")
	flag.BoolVar(&push, "push", false, "push the images and the Carvel bundle to their registries (credentials from the Docker config, if any)")
	flag.BoolVar(&printPins, "print-deb-pins", false, "print the node image's Debian package pins for what the apt sources offer now (review, then paste into deploy/image/builder/t1route.go), and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every setting is a flag (see -h)", flag.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if printPins {
		now, err := builder.OfferedPins(ctx, builder.NodeDebPins())
		if err != nil {
			return err
		}
		pinned := map[string]string{}
		for _, p := range builder.NodeDebPins() {
			pinned[p.Package] = p.Version
		}
		for _, p := range now {
			change := ""
			if pinned[p.Package] != p.Version {
				change = " // was " + pinned[p.Package]
			}
			fmt.Printf("{%q, %q, %q, ...},%s\n", p.Package, p.Version, p.SHA256, change)
		}
		return nil
	}
	root, err := gitOut("rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("run from the t1route repository: %w", err)
	}
	if revision == "" {
		if revision, err = gitOut("-C", root, "rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if created == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if created, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want Unix seconds", s)
			}
		} else {
			s, err := gitOut("-C", root, "log", "-1", "--format=%ct")
			if err != nil {
				return err
			}
			if created, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("commit time %q: %w", s, err)
			}
		}
	}
	if image == "" {
		image = "ghcr.io/t1route/t1route:v" + strings.TrimPrefix(version, "v")
	}
	if nodeImage == "" {
		if nodeImage, err = builder.NodeRef(image); err != nil {
			return err
		}
	}

	start := time.Now()
	imgs, err := builder.Build(ctx, builder.Options{Root: root, WorkDir: filepath.Join(out, "work"), Version: version,
		Revision: revision, Created: time.Unix(created, 0), Source: source})
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(out, "oci")
	set := []builder.Named{{Ref: image, Image: imgs.Controller}, {Ref: nodeImage, Image: imgs.Node}}
	bundle, bundleRef, err := carvelBundle(root, image, nodeImage, set, version, revision, source, time.Unix(created, 0))
	if err != nil {
		return err
	}
	set = append(set, builder.Named{Ref: bundleRef, Image: bundle})
	if err := builder.WriteLayout(layoutDir, set); err != nil {
		return err
	}
	for _, n := range set {
		d, err := builder.Digest(n.Image)
		if err != nil {
			return err
		}
		size, err := builder.CompressedSize(n.Image)
		if err != nil {
			return err
		}
		fmt.Printf("%s digest: %s (%s compressed)\n", n.Ref, d, humanSize(size))
	}
	fmt.Printf("OCI layout: %s (built in %.1f s; version %s, created %s)\n", layoutDir, time.Since(start).Seconds(), version,
		time.Unix(created, 0).UTC().Format(time.RFC3339))
	if err := writePackage(root, filepath.Join(out, "carvel"), set[len(set)-1]); err != nil {
		return err
	}
	if push {
		for _, n := range set {
			if err := builder.Push(ctx, n.Ref, n.Image); err != nil {
				return err
			}
			fmt.Printf("pushed %s\n", n.Ref)
		}
	}
	return nil
}

func gitOut(args ...string) (string, error) {
	b, err := exec.Command("git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func humanSize(b int64) string {
	if b < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(b)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}
