package builder

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options say what to build t1route's images from.
type Options struct {
	Root     string    // repository root: go build runs there
	WorkDir  string    // scratch space kept between builds: binaries, and downloaded packages unless DebCache is set
	DebCache string    // where downloaded Debian packages are kept (default <WorkDir>/debs)
	Version  string    // t1route version (main.version), e.g. v0.3.0 or a git describe
	Revision string    // source revision (git commit) for the labels
	Created  time.Time // creation time in the config and every file: the commit's time, not the clock
	Source   string    // org.opencontainers.image.source
}

// Images are t1route's images.
type Images struct {
	// Controller runs `t1route controller` (and echo, check, …): the two
	// static binaries on an empty base, user 65532.
	Controller v1.Image
	// Node runs the agent DaemonSet: the same binaries plus Open vSwitch
	// (daemons and tools, from Debian packages, with their libraries and
	// a POSIX shell), user root. The agent runs ovs-ofctl, so it needs
	// this image even when the host runs Open vSwitch.
	Node v1.Image
	// Packages are the Debian packages in Node, "name=version".
	Packages []string
}

// nodeDebs are the Debian 12 packages whose files make the Open vSwitch
// layer: the OVS daemons and tools, dash for the start script and the
// init container's one-liner, and the shared libraries they load
// (CheckClosure fails the build if one is missing).
var nodeDebs = []Deb{
	{"openvswitch-switch", keepPaths("/usr/lib/openvswitch-switch/ovs-vswitchd", "/usr/bin/ovs-vsctl", "/usr/bin/ovs-dpctl",
		"/usr/share/openvswitch/vswitch.ovsschema", "/usr/share/openvswitch/local-config.ovsschema")},
	{"openvswitch-common", keepPaths("/usr/sbin/ovsdb-server", "/usr/bin/ovsdb-tool", "/usr/bin/ovsdb-client", "/usr/bin/ovs-appctl", "/usr/bin/ovs-ofctl")},
	{"dash", keepPaths("/usr/bin/dash")},
	{"libc6", keepLibs}, {"libssl3", keepLibs}, {"libcap-ng0", keepLibs}, {"libnuma1", keepLibs},
	{"libunbound8", keepLibs}, {"libevent-2.1-7", keepLibs}, {"libxdp1", keepLibs}, {"libbpf1", keepLibs},
	{"libelf1", keepLibs}, {"zlib1g", keepLibs}, {"libgmp10", keepLibs}, {"libhogweed6", keepLibs}, {"libnettle8", keepLibs},
}

// keepPaths keeps the named files and every copyright file.
func keepPaths(paths ...string) func(string) bool {
	return func(p string) bool {
		for _, q := range paths {
			if p == q {
				return true
			}
		}
		return isCopyright(p)
	}
}

// keepLibs keeps shared libraries directly in the multiarch directory (not
// plugins in its subdirectories), the loader, and copyright files.
func keepLibs(p string) bool {
	dir := path.Dir(p)
	if (dir == "/usr/lib/x86_64-linux-gnu" && strings.Contains(path.Base(p), ".so")) || p == "/usr/lib64/ld-linux-x86-64.so.2" {
		return true
	}
	return isCopyright(p)
}

func isCopyright(p string) bool {
	return strings.HasPrefix(p, "/usr/share/doc/") && path.Base(p) == "copyright"
}

//go:embed start-ovs.sh
var startOVS []byte

// Build builds both images. It runs go build (CGO_ENABLED=0, -trimpath)
// and, for the Open vSwitch layer, apt-get download and dpkg-deb.
func Build(ctx context.Context, o Options) (*Images, error) {
	if o.Created.IsZero() {
		return nil, fmt.Errorf("no creation time: give the commit's time (git log -1 --format=%%ct), never the clock, so rebuilds give the same digest")
	}
	binDir := filepath.Join(o.WorkDir, "bin")
	if err := GoBuild(ctx, o.Root, binDir, []string{"-X main.version=" + o.Version}, "./cmd/t1route", "./cmd/t1route-cni"); err != nil {
		return nil, err
	}
	bins := []File{
		{Path: "/usr/local/bin/t1route", Mode: 0o755, Source: filepath.Join(binDir, "t1route")},
		{Path: "/usr/local/bin/t1route-cni", Mode: 0o755, Source: filepath.Join(binDir, "t1route-cni")},
	}
	for _, b := range bins {
		if err := CheckStatic(b.Source); err != nil {
			return nil, err
		}
	}
	base, err := Layer(BaseFiles(), o.Created)
	if err != nil {
		return nil, err
	}
	binLayer, err := Layer(bins, o.Created)
	if err != nil {
		return nil, err
	}
	labels := func(title, desc string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":       title,
			"org.opencontainers.image.description": desc,
			"org.opencontainers.image.source":      o.Source,
			"org.opencontainers.image.url":         o.Source,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.licenses":    "Apache-2.0",
			"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
		}
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	baseLayer := NamedLayer{base, "base: /etc/passwd and /etc/group (root, nonroot 65532), /tmp"}
	binsLayer := NamedLayer{binLayer, "t1route " + o.Version + ": /usr/local/bin/t1route, /usr/local/bin/t1route-cni (static, CA roots built in)"}
	ctrl, err := BuildImage(Spec{
		Layers: []NamedLayer{baseLayer, binsLayer}, User: "65532:65532",
		Entrypoint: []string{"/usr/local/bin/t1route"}, Env: env, Created: o.Created,
		Labels: labels("t1route", "t1route controller: Tier-1 static routes for node podCIDRs through the NSX Policy API"),
	})
	if err != nil {
		return nil, err
	}

	if o.DebCache == "" {
		o.DebCache = filepath.Join(o.WorkDir, "debs")
	}
	ovsFiles, pkgs, err := NodeFiles(ctx, o.DebCache)
	if err != nil {
		return nil, err
	}
	ovsLayer, err := Layer(ovsFiles, o.Created)
	if err != nil {
		return nil, err
	}
	nodeLabels := labels("t1route-node", "t1route node agent, t1route-cni and Open vSwitch (Debian packages: "+strings.Join(pkgs, " ")+")")
	node, err := BuildImage(Spec{
		Layers:     []NamedLayer{baseLayer, {ovsLayer, "Open vSwitch, dash and their libraries from Debian: " + strings.Join(pkgs, " ")}, binsLayer},
		Entrypoint: []string{"/usr/local/bin/t1route"}, Env: env, Created: o.Created, Labels: nodeLabels,
	})
	if err != nil {
		return nil, err
	}
	return &Images{Controller: ctrl, Node: node, Packages: pkgs}, nil
}

// BaseFiles are what every image has: users (root, and nonroot 65532 for
// the controller), name service order for Go's resolver, /tmp.
func BaseFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")},
		Dir("/tmp", 0o777|os.ModeSticky),
		{Path: "/home/nonroot", Mode: os.ModeDir | 0o750, UID: 65532, GID: 65532},
		Dir("/root", 0o700),
	}
}

// NodeFiles are the Open vSwitch layer's files, from the Debian packages
// downloaded into debDir, and the packages as "name=version".
func NodeFiles(ctx context.Context, debDir string) ([]File, []string, error) {
	var names []string
	for _, d := range nodeDebs {
		names = append(names, d.Package)
	}
	fetched, err := FetchDebs(ctx, debDir, names)
	if err != nil {
		return nil, nil, err
	}
	files := UsrMergeLinks()
	var pkgs []string
	for _, f := range fetched {
		var keep func(string) bool
		for _, d := range nodeDebs {
			if d.Package == f.Package {
				keep = d.Keep
			}
		}
		fs, err := DebFiles(ctx, f.File, keep)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
		pkgs = append(pkgs, f.Package+"="+f.Version)
	}
	files = append(files,
		// Debian's alternatives system links these at install time.
		Symlink("/usr/sbin/ovs-vswitchd", "/usr/lib/openvswitch-switch/ovs-vswitchd"),
		Symlink("/usr/bin/sh", "dash"),
		File{Path: "/usr/local/bin/start-ovs", Mode: 0o755, Data: startOVS},
		Dir("/var/run/openvswitch", 0o755), Dir("/etc/openvswitch", 0o755), Dir("/var/log/openvswitch", 0o755),
	)
	if err := CheckClosure(files); err != nil {
		return nil, nil, err
	}
	return files, pkgs, nil
}

// GoBuild builds static binaries of pkgs (relative to dir) into out:
// CGO_ENABLED=0, -trimpath, no VCS stamping, stripped, for linux/amd64.
func GoBuild(ctx context.Context, dir, out string, ldflags []string, pkgs ...string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags", strings.Join(append([]string{"-s", "-w"}, ldflags...), " "),
		"-o", out + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
