package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBundleIsReproducibleAndLocksTheImages(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "a.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := "sha256:" + strings.Repeat("ab", 32)
	spec := BundleSpec{Dir: dir, Images: []LockedImage{{Ref: "ghcr.io/t1route/t1route:v1", Digest: d}}, Values: []byte("#@data/values\n---\nimage: x\n"),
		Created: time.Unix(1795460239, 0)}
	build := func() string {
		img, err := Bundle(spec)
		if err != nil {
			t.Fatal(err)
		}
		dg, err := Digest(img)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.Labels[BundleLabel] != "true" {
			t.Errorf("labels %v lack %s", cf.Config.Labels, BundleLabel)
		}
		lock, err := ReadBundleFile(img, ".imgpkg/images.yml")
		if err != nil {
			t.Fatal(err)
		}
		want := "- image: ghcr.io/t1route/t1route@" + d + "\n  annotations:\n    kbld.carvel.dev/id: ghcr.io/t1route/t1route:v1\n"
		if !strings.Contains(string(lock), "kind: ImagesLock") || !strings.Contains(string(lock), want) {
			t.Errorf("images.yml:\n%s\nwant it to hold:\n%s", lock, want)
		}
		for _, f := range []string{"config/a.yaml", "config/values-release.yaml"} {
			if _, err := ReadBundleFile(img, f); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		// The file's mode and time on this machine do not matter.
		os.Chtimes(filepath.Join(dir, "config", "a.yaml"), time.Now(), time.Now()) //nolint:errcheck
		os.Chmod(filepath.Join(dir, "config", "a.yaml"), 0o640)                    //nolint:errcheck
		return dg
	}
	if a, b := build(), build(); a != b {
		t.Errorf("two builds: %s and %s", a, b)
	}
	if _, err := ImagesLock([]LockedImage{{Ref: "ghcr.io/t1route/t1route:v1", Digest: "latest"}}); err == nil {
		t.Error("a lock without a digest was accepted")
	}
	os.MkdirAll(filepath.Join(dir, ".imgpkg"), 0o755) //nolint:errcheck
	if _, err := Bundle(spec); err == nil || !strings.Contains(err.Error(), ".imgpkg") {
		t.Errorf("a bundle folder holding .imgpkg: %v", err)
	}
}
