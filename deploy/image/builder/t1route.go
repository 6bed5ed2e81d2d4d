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
	Version  string    // t1route version (podroute/version.Version), e.g. 0.3.0; another than the tree's only for tests
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
// init container's one-liner, iptables for the agent's kernel guard, and
// the shared libraries they load (CheckClosure fails the build if one is
// missing). Each is pinned to an
// exact version and the SHA-256 of its .deb: the build fails, naming the
// package, when the apt sources no longer offer it (Debian published a fix:
// review it, then update these lines from `go run ./deploy/image
// --print-deb-pins`) or offer different content under its version.
var nodeDebs = []Deb{
	{"openvswitch-switch", "3.1.0-2+deb12u1", "b955d4a95700bbe723e4d82b5cf72d0fe096d599dc5c46c202bb6b12d2f2e83f",
		keepPaths("/usr/lib/openvswitch-switch/ovs-vswitchd", "/usr/bin/ovs-vsctl", "/usr/bin/ovs-dpctl",
			"/usr/share/openvswitch/vswitch.ovsschema", "/usr/share/openvswitch/local-config.ovsschema")},
	{"openvswitch-common", "3.1.0-2+deb12u1", "834c1ae20e36e843f44dd524b8a942f134cbc45cc9702012949bce42f6b41ddc",
		keepPaths("/usr/sbin/ovsdb-server", "/usr/bin/ovsdb-tool", "/usr/bin/ovsdb-client", "/usr/bin/ovs-appctl", "/usr/bin/ovs-ofctl")},
	{"dash", "0.5.12-2", "33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f", keepPaths("/usr/bin/dash")},
	// iptables (nft backend): the agent keeps the management guard's chain
	// in the node's FORWARD (podroute/node/hostguard). Its rules load the
	// conntrack match's extension (checked: iptables-restore refuses them
	// without it; the verdicts need none).
	{"iptables", "1.8.9-2", "2928d3ca6ca8a3dc3f423f6752822b1f3614a5ba609ff7806bcba4449ffe90e1", keepPaths("/usr/sbin/xtables-nft-multi", "/usr/sbin/iptables-nft", "/usr/sbin/iptables-nft-restore",
		"/usr/sbin/iptables-nft-save", "/usr/sbin/ip6tables-nft", "/usr/sbin/ip6tables-nft-restore", "/usr/sbin/ip6tables-nft-save",
		"/usr/lib/x86_64-linux-gnu/xtables/libxt_conntrack.so")},
	{"libxtables12", "1.8.9-2", "cb841d66950a43af4a398625313d2f3da9065299c9738538de6c2c3495857040", keepLibs},
	{"libip4tc2", "1.8.9-2", "f2c48b367f9ec13f9aa577e7ccf81b371ce5d5fe22dddf9d7aa99f1e0bb7cfc4", keepLibs},
	{"libip6tc2", "1.8.9-2", "be88db3dfa2fe3345ea343207f7c75345602686121e579023d021c348b9b4f4d", keepLibs},
	{"libnftnl11", "1.2.4-2", "9e619e1470a1915264e906020f3bfc046fd8458043b1342686d997b5078213af", keepLibs},
	{"libmnl0", "1.0.4-3", "4581f42e3373cb72f9ea4e88163b17873afca614a6c6f54637e95aa75983ea7c", keepLibs},
	{"libnetfilter-conntrack3", "1.0.9-3", "65f1539238f60fcc85d115acd640474f45c77bfddcf402eb7d75965a783c2bc8", keepLibs},
	{"libnfnetlink0", "1.0.2-2", "ae5cbba417ea48f34c1f72c27e8146a81f20614c1296bca2cd7234c8215fddcc", keepLibs},
	{"libc6", "2.36-9+deb12u14", "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf", keepLibs},
	{"libssl3", "3.0.22-1~deb12u2", "cb4784740daa9b3b0eaea2b444bbefa686794afbbf3d678d238c1fd9875f2efd", keepLibs},
	{"libcap-ng0", "0.8.3-1+b3", "b4b54769c77e4a71c8b33aee4d600ba28a9994a1c6f60d55d4ebe7fc44882e07", keepLibs},
	{"libnuma1", "2.0.16-1", "639e1ab6bd66ead40db8a22c332d7199679fa22db261cac34444eb8eb4c17dda", keepLibs},
	{"libunbound8", "1.17.1-2+deb12u4", "6d600bab908e5aec4beb4d948ffa95b3cb7470f55a79557b328524d17b853374", keepLibs},
	{"libevent-2.1-7", "2.1.12-stable-8+deb12u1", "95a025ae2548aed9dbb0f0a0215b0483b7fa43db1d4f1f318f013f2ea84987c3", keepLibs},
	{"libxdp1", "1.3.1-1", "a0fd2ace12a996a217f8bb7f3ddcd4e982c2d890b864d40add05fac1739e96a4", keepLibs},
	{"libbpf1", "1:1.1.2-0+deb12u1", "5e7505ef77ebc84ad0203411e4afdeb8a98f40fb7f78f013aa4dd8710e49f8ed", keepLibs},
	{"libelf1", "0.188-2.1", "619add379c606b3ac6c1a175853b918e6939598a83d8ebadf3bdfd50d10b3c8c", keepLibs},
	{"zlib1g", "1:1.2.13.dfsg-1+deb12u1", "ad9f1ea0537a32c9eaecc619563a9db596a5dee33afce8393b1083f22d301e1d", keepLibs},
	{"libgmp10", "2:6.2.1+dfsg1-1.1", "187aedef2ed763f425c1e523753b9719677633c7eede660401739e9c893482bd", keepLibs},
	{"libhogweed6", "3.8.1-2", "ed8185c28b2cb519744a5a462dcd720d3b332c9b88a1d0002eac06dc8550cb94", keepLibs},
	{"libnettle8", "3.8.1-2", "45922e6e289ffd92f0f92d2bb9159e84236ff202d552a461bf10e5335b3f0261", keepLibs},
}

// NodeDebPins are the node image's pinned Debian packages (no file filters).
func NodeDebPins() []Deb {
	var out []Deb
	for _, d := range nodeDebs {
		out = append(out, Deb{Package: d.Package, Version: d.Version, SHA256: d.SHA256})
	}
	return out
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
	if err := GoBuild(ctx, o.Root, binDir, VersionFlags(o.Version, o.Revision), "./cmd/t1route", "./cmd/t1route-cni"); err != nil {
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
	// The reference portmap plugin (hostPort), which the agent installs next
	// to t1route-cni and chains after it.
	if err := GoBuild(ctx, o.Root, binDir, nil, PortmapPackage); err != nil {
		return nil, err
	}
	portmap := File{Path: "/usr/local/bin/portmap", Mode: 0o755, Source: filepath.Join(binDir, "portmap")}
	if err := CheckStatic(portmap.Source); err != nil {
		return nil, err
	}
	portmapLayer, err := Layer([]File{portmap}, o.Created)
	if err != nil {
		return nil, err
	}
	nodeLabels := labels("t1route-node", "t1route node agent, t1route-cni and Open vSwitch (Debian packages: "+strings.Join(pkgs, " ")+")")
	node, err := BuildImage(Spec{
		Layers: []NamedLayer{baseLayer, {ovsLayer, "Open vSwitch, iptables, dash and their libraries from Debian: " + strings.Join(pkgs, " ")},
			{portmapLayer, "CNI portmap plugin (" + PortmapPackage + ", go.mod's version): /usr/local/bin/portmap"}, binsLayer},
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
	fetched, err := FetchDebs(ctx, debDir, nodeDebs)
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
		Symlink("/usr/sbin/iptables", "iptables-nft"), Symlink("/usr/sbin/iptables-restore", "iptables-nft-restore"),
		Symlink("/usr/sbin/ip6tables", "ip6tables-nft"), Symlink("/usr/sbin/ip6tables-restore", "ip6tables-nft-restore"),
		File{Path: "/usr/local/bin/start-ovs", Mode: 0o755, Data: startOVS},
		Dir("/var/run/openvswitch", 0o755), Dir("/etc/openvswitch", 0o755), Dir("/var/log/openvswitch", 0o755),
	)
	if err := CheckClosure(files); err != nil {
		return nil, nil, err
	}
	return files, pkgs, nil
}

// VersionFlags are the linker flags that stamp t1route's binaries with a
// version (podroute/version.Version: the tree's own, or a test's) and the
// commit they were built from (its first 12 characters).
func VersionFlags(version, revision string) []string {
	const pkg = "github.com/t1route/t1route/podroute/version"
	flags := []string{"-X " + pkg + ".Version=" + version}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" {
		flags = append(flags, "-X "+pkg+".Commit="+revision)
	}
	return flags
}

// PortmapPackage is the CNI reference plugin for hostPort (go.mod's tool
// directive pins its version).
const PortmapPackage = "github.com/containernetworking/plugins/plugins/meta/portmap"

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
