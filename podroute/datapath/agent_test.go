package datapath

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
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
			cfg := AgentConfig{CNIPluginSource: tc.source, CNIBinDir: filepath.Join(dir, tc.name, "bin"), CNIConfDir: filepath.Join(dir, tc.name, "net.d")}
			a := NewAgent(cfg, nil, nil, nil)
			if err := a.installCNI(cidrs, GatewayAddrs(cidrs)); err != nil {
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
	if err := NewAgent(AgentConfig{CNIPluginSource: filepath.Join(dir, "missing"), CNIBinDir: dir, CNIConfDir: dir}, nil, nil, nil).installCNI(cidrs, GatewayAddrs(cidrs)); err == nil {
		t.Fatal("a missing plugin source was not an error")
	}
}
