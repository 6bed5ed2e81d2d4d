//go:build linux

// Package conformance runs the Kubernetes project's own end-to-end
// networking suites (k8s.io/kubernetes/test/e2e at the version make
// cluster runs, built by ./suite) against make cluster with t1route
// installed: the images the specs pull, built here and pushed to the
// cluster's registry; the spec selection, with a reason for every skip;
// and the run's report.
package conformance

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/t1route/t1route/deploy/image/builder"
)

// Image versions test/utils/image/manifest.go (k8s.io/kubernetes v1.35.4)
// asks for: the suite pulls <registry>/e2e-test-images/NAME:VERSION and
// <registry>/pause:VERSION, with the registries KUBE_TEST_REPO_LIST maps.
const (
	AgnhostVersion        = "2.59"
	AgnhostPrevVersion    = "2.55"
	JessieDnsutilsVersion = "1.7"
	NginxVersion          = "1.14-4"
	PauseVersion          = "3.10.1"
	BusyBoxVersion        = "1.37.0-1"
)

// toolDebs are the Debian packages whose programs the specs run inside
// their pods: a shell and coreutils (sh -c loops, seq, sleep, cat, test),
// curl and nc (many Service and Proxy specs), dig (DNS), getent (DNS
// /etc/hosts specs), hostname and awk (DNS pod records), ip and ss
// (NodePort specs), grep and sed. Upstream agnhost is Alpine with the same
// tools (bind-tools curl netcat-openbsd iproute2 bash).
var toolDebs = []string{"bash", "coreutils", "curl", "netcat-openbsd", "bind9-dnsutils", "bind9-host", "libc-bin", "hostname", "mawk",
	"iproute2", "grep", "sed"}

// libDebs are the shared libraries those programs load (CheckClosure fails
// the build if one is missing).
var libDebs = []string{"libc6", "bind9-libs", "libbpf1", "libbrotli1", "libbsd0", "libcap2", "libcom-err2", "libcurl4", "libdb5.3",
	"libedit2", "libelf1", "libffi8", "libfstrm0", "libgcc-s1", "libgmp10", "libgnutls30", "libgssapi-krb5-2", "libhogweed6", "libicu72",
	"libidn2-0", "libjemalloc2", "libjson-c5", "libk5crypto3", "libkeyutils1", "libkrb5-3", "libkrb5support0", "libldap-2.5-0",
	"liblmdb0", "liblzma5", "libmaxminddb0", "libmd0", "libmnl0", "libnettle8", "libnghttp2-14", "libp11-kit0", "libpcre2-8-0",
	"libprotobuf-c1", "libpsl5", "librtmp1", "libsasl2-2", "libselinux1", "libssh2-1", "libssl3", "libstdc++6", "libtasn1-6",
	"libtinfo6", "libtirpc3", "libunistring2", "libuv1", "libxml2", "libxtables12", "libzstd1", "zlib1g", "libcrypt1", "libacl1",
	"libattr1", "libgpm2", "libncursesw6", "libreadline8", "libsigsegv2"}

// keepTools keeps the programs of a tool package (under /usr/bin and
// /usr/sbin after the /usr merge) and its copyright files.
func keepTools(p string) bool {
	return strings.HasPrefix(p, "/usr/bin/") || strings.HasPrefix(p, "/usr/sbin/") || isCopyright(p)
}

// keepLibs keeps shared libraries directly in the multiarch directory, the
// loader, and copyright files.
func keepLibs(p string) bool {
	if (path.Dir(p) == "/usr/lib/x86_64-linux-gnu" && strings.Contains(path.Base(p), ".so")) || p == "/usr/lib64/ld-linux-x86-64.so.2" {
		return true
	}
	return isCopyright(p)
}

func isCopyright(p string) bool {
	return strings.HasPrefix(p, "/usr/share/doc/") && path.Base(p) == "copyright"
}

// toolFiles are the tools layer's files, from the Debian packages
// downloaded into debDir, and the packages as "name=version".
func toolFiles(ctx context.Context, debDir string) ([]builder.File, []string, error) {
	fetched, err := builder.FetchOfferedDebs(ctx, debDir, append(append([]string(nil), toolDebs...), libDebs...))
	if err != nil {
		return nil, nil, err
	}
	tools := map[string]bool{}
	for _, t := range toolDebs {
		tools[t] = true
	}
	files := append(builder.UsrMergeLinks(), builder.BaseFiles()...)
	var pkgs []string
	for _, f := range fetched {
		keep := keepLibs
		if tools[f.Package] {
			keep = keepTools
		}
		fs, err := builder.DebFiles(ctx, f.File, keep)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
		pkgs = append(pkgs, f.Package+"="+f.Version)
	}
	files = append(files,
		// What Debian's alternatives and postinst scripts link at install time.
		builder.Symlink("/usr/bin/sh", "bash"),
		builder.Symlink("/usr/bin/nc", "nc.openbsd"),
		builder.Symlink("/usr/bin/awk", "mawk"),
		builder.File{Path: "/etc/hosts", Mode: 0o644, Data: []byte("127.0.0.1 localhost\n")},
	)
	if err := builder.CheckClosure(files); err != nil {
		return nil, nil, fmt.Errorf("the test images' tools layer: %w", err)
	}
	return files, pkgs, nil
}

// TestImage is one image the suite pulls, and what it is built from.
type TestImage struct {
	Repo, Tag string // under the registry: e2e-test-images/agnhost, 2.59
	What      string // what stands in for the upstream image
	Image     v1.Image
}

// BuildTestImages builds the images the chosen specs pull from the suite
// folder (suite/build.sh's output): agnhost (the binary ./suite builds from k8s.io/kubernetes/test/images/agnhost, with
// the Debian tools above, as upstream's Alpine-based image has them),
// jessie-dnsutils (the same tools: dig, a shell), nginx (a web server on
// port 80: agnhost test-webserver), busybox (the tools) and pause (the
// cluster's own pause program).
func BuildTestImages(ctx context.Context, suite, pause, debDir string) ([]TestImage, []string, error) {
	agnhost := filepath.Join(suite, "agnhost")
	epoch := time.Unix(0, 0)
	files, pkgs, err := toolFiles(ctx, debDir)
	if err != nil {
		return nil, nil, err
	}
	toolsLayer, err := builder.Layer(files, epoch)
	if err != nil {
		return nil, nil, err
	}
	tools := builder.NamedLayer{Layer: toolsLayer, CreatedBy: "Debian packages: " + strings.Join(pkgs, " ")}
	for _, b := range []string{agnhost, pause} {
		if err := builder.CheckStatic(b); err != nil {
			return nil, nil, err
		}
	}
	// As upstream's image: agnhost-2 (entrypoint specs), /uploads (netexec),
	// and porter's TLS certificate and key in its working directory, /.
	agn, err := builder.Layer([]builder.File{{Path: "/agnhost", Mode: 0o755, Source: agnhost}, builder.Symlink("/agnhost-2", "agnhost"),
		builder.Dir("/uploads", 0o777),
		{Path: "/localhost.crt", Mode: 0o644, Source: filepath.Join(suite, "porter", "localhost.crt")},
		{Path: "/localhost.key", Mode: 0o644, Source: filepath.Join(suite, "porter", "localhost.key")}}, epoch)
	if err != nil {
		return nil, nil, err
	}
	agnLayer := builder.NamedLayer{Layer: agn, CreatedBy: "agnhost (k8s.io/kubernetes/test/images/agnhost v1.35.4)"}
	pl, err := builder.Layer([]builder.File{{Path: "/pause", Mode: 0o755, Source: pause}}, epoch)
	if err != nil {
		return nil, nil, err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	build := func(repo, tag, what string, spec builder.Spec) (TestImage, error) {
		spec.Created, spec.Env = epoch, env
		img, err := builder.BuildImage(spec)
		return TestImage{Repo: repo, Tag: tag, What: what, Image: img}, err
	}
	var out []TestImage
	for _, b := range []struct {
		repo, tag, what string
		spec            builder.Spec
	}{
		{"e2e-test-images/agnhost", AgnhostVersion, "agnhost built from k8s.io/kubernetes v1.35.4 with Debian's bash, curl, nc, dig, ip",
			builder.Spec{Layers: []builder.NamedLayer{tools, agnLayer}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}},
		{"e2e-test-images/agnhost", AgnhostPrevVersion, "the same agnhost (v1.35.4's) under the previous version's tag",
			builder.Spec{Layers: []builder.NamedLayer{tools, agnLayer}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}},
		{"e2e-test-images/jessie-dnsutils", JessieDnsutilsVersion, "Debian's dig, getent, a shell and coreutils",
			builder.Spec{Layers: []builder.NamedLayer{tools}, Cmd: []string{"/bin/sh"}}},
		{"e2e-test-images/busybox", BusyBoxVersion, "Debian's shell, coreutils and nc (not busybox)",
			builder.Spec{Layers: []builder.NamedLayer{tools}, Cmd: []string{"/bin/sh"}}},
		{"e2e-test-images/nginx", NginxVersion, "a web server on port 80: agnhost test-webserver (not nginx)",
			builder.Spec{Layers: []builder.NamedLayer{tools, agnLayer}, Entrypoint: []string{"/agnhost", "test-webserver", "--port", "80"}}},
		{"pause", PauseVersion, "the cluster's pause program (integration/cluster/pause)",
			builder.Spec{Layers: []builder.NamedLayer{{Layer: pl, CreatedBy: "pause"}}, Entrypoint: []string{"/pause"}}},
	} {
		img, err := build(b.repo, b.tag, b.what, b.spec)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, img)
	}
	return out, pkgs, nil
}

// PushTestImages pushes images to registry (host:port) and returns the
// KUBE_TEST_REPO_LIST file's contents that make the suite pull them from
// there.
func PushTestImages(ctx context.Context, registry string, images []TestImage) (string, error) {
	for _, i := range images {
		if err := builder.Push(ctx, registry+"/"+i.Repo+":"+i.Tag, i.Image); err != nil {
			return "", err
		}
	}
	return RepoList(registry), nil
}

// RepoList is a KUBE_TEST_REPO_LIST (test/utils/image's RegistryList, as
// YAML) pointing every registry the suite knows at registry: images not
// pushed there fail to pull instead of reaching out.
func RepoList(registry string) string {
	var b strings.Builder
	for _, k := range []string{"promoterE2eRegistry", "buildImageRegistry", "invalidRegistry",
		"gcEtcdRegistry", "gcRegistry", "sigStorageRegistry", "privateRegistry", "dockerLibraryRegistry", "cloudProviderGcpRegistry"} {
		r := registry
		switch k {
		case "promoterE2eRegistry":
			r += "/e2e-test-images"
		case "buildImageRegistry":
			r += "/build-image"
		case "sigStorageRegistry":
			r += "/sig-storage"
		case "invalidRegistry":
			r += "/invalid"
		case "privateRegistry":
			r += "/private"
		case "dockerLibraryRegistry":
			r += "/library"
		case "cloudProviderGcpRegistry":
			r += "/cloud-provider-gcp"
		}
		fmt.Fprintf(&b, "%s: %s\n", k, r)
	}
	return b.String()
}

// cacheDir is where the suite's binaries are built (make conformance-suite).
func cacheDir(root string) string { return filepath.Join(root, ".cache", "conformance") }
