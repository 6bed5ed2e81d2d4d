package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/t1route/t1route/podroute/node/ovs"
)

func TestInstallCNI(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "src-plugin")
	os.WriteFile(plugin, []byte("#!/bin/true\n"), 0o700) //nolint:errcheck
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.1.0/24")}
	for _, tc := range []struct {
		name       string
		source     string
		wantBinary bool
	}{{"with the plugin", plugin, true}, {"conflist only", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{CNIPluginSource: tc.source, CNIBinDir: filepath.Join(dir, tc.name, "bin"), CNIConfDir: filepath.Join(dir, tc.name, "net.d")}
			a := New(cfg, nil, nil, nil)
			if err := a.installCNI(cidrs, ovs.GatewayAddrs(cidrs)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(cfg.CNIConfDir, ConfListFile)); err != nil {
				t.Fatalf("no conflist: %v", err)
			}
			st, err := os.Stat(filepath.Join(cfg.CNIBinDir, PluginType))
			if tc.wantBinary && (err != nil || st.Mode().Perm() != 0o755) {
				t.Fatalf("plugin not installed executable: %v %v", err, st)
			}
			if !tc.wantBinary && err == nil {
				t.Fatal("a plugin was installed without a source")
			}
			left, _ := filepath.Glob(filepath.Join(cfg.CNIConfDir, ".*"))
			if len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
	// The node image has portmap next to t1route-cni: installed and chained.
	img := filepath.Join(dir, "image")
	os.MkdirAll(img, 0o755)                                                       //nolint:errcheck
	os.WriteFile(filepath.Join(img, PluginType), []byte("#!/bin/true\n"), 0o700)  //nolint:errcheck
	os.WriteFile(filepath.Join(img, PortmapType), []byte("#!/bin/true\n"), 0o700) //nolint:errcheck
	for _, tc := range []struct {
		name    string
		source  string
		portmap bool
	}{{"portmap beside the plugin", filepath.Join(img, PluginType), true}, {"no portmap beside the plugin", plugin, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{CNIPluginSource: tc.source, CNIBinDir: filepath.Join(dir, tc.name, "bin"), CNIConfDir: filepath.Join(dir, tc.name, "net.d")}
			if err := New(cfg, nil, nil, nil).installCNI(cidrs, ovs.GatewayAddrs(cidrs)); err != nil {
				t.Fatal(err)
			}
			conf, err := os.ReadFile(filepath.Join(cfg.CNIConfDir, ConfListFile))
			if err != nil {
				t.Fatal(err)
			}
			chained := strings.Contains(string(conf), `"type": "portmap"`) && strings.Contains(string(conf), `"portMappings": true`)
			st, err := os.Stat(filepath.Join(cfg.CNIBinDir, PortmapType))
			installed := err == nil && st.Mode().Perm() == 0o755
			if chained != tc.portmap || installed != tc.portmap {
				t.Errorf("portmap chained %v, installed %v; want both %v:\n%s", chained, installed, tc.portmap, conf)
			}
		})
	}
	if err := New(Config{CNIPluginSource: filepath.Join(dir, "missing"), CNIBinDir: dir, CNIConfDir: dir}, nil, nil, nil).installCNI(cidrs, ovs.GatewayAddrs(cidrs)); err == nil {
		t.Fatal("a missing plugin source was not an error")
	}
}

func TestConfList(t *testing.T) {
	cidrs := []netip.Prefix{netip.MustParsePrefix("100.96.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}
	cfg := Config{DatapathType: "netdev"}
	cfg.Defaults()
	b, err := ConfList(cfg, cidrs, ovs.GatewayAddrs(cidrs))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cniVersion": "1.0.0"`, `"type": "t1route-cni"`, `"subnet": "100.96.1.0/24"`, `"gateway": "100.96.1.1"`,
		`"disableTxChecksumOffload": true`, `"type": "host-local"`, `"subnet": "fd00:1::/64"`, `"gateway": "fd00:1::1"`, `"dst": "::/0"`, `"dst": "0.0.0.0/0"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
}
