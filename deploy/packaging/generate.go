// Package packaging generates t1route's Helm chart (deploy/helm/t1route)
// and Carvel package (deploy/carvel) from deploy/render, so that neither
// can drift from `t1route render`: render is called with placeholders for
// every value, once per combination of the choices that change which
// objects it makes (authentication, datapath, …); each object becomes a
// template whose placeholders are references to the values, under the
// conditions it depends on. `make packages` writes the files;
// TestGeneratedFilesAreCurrent fails when they differ from what render
// gives now, and the e2e-packages tests compare `helm template` and ytt
// with `t1route render` object by object.
package packaging

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Generate returns every generated file, by path relative to the
// repository root.
func Generate() (map[string][]byte, error) {
	shapes, vars, err := collect()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	hf, err := helmFiles(shapes, vars)
	if err != nil {
		return nil, err
	}
	for p, b := range hf {
		out[filepath.Join(ChartDir, p)] = b
	}
	cf, err := carvelFiles(shapes, vars)
	if err != nil {
		return nil, err
	}
	for p, b := range cf {
		out[filepath.Join(CarvelDir, p)] = b
	}
	return out, nil
}

// GeneratedDirs are the folders whose every file is generated: a file
// there that Generate does not return is stale.
var GeneratedDirs = []string{ChartDir, filepath.Join(CarvelDir, "bundle", "config")}

// Diff compares files with the tree at root: paths that differ, are
// missing, or are stale (in GeneratedDirs, not generated).
func Diff(root string, files map[string][]byte) ([]string, error) {
	var out []string
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || string(got) != string(want) {
			out = append(out, p)
		}
	}
	for _, d := range GeneratedDirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if !e.IsDir() && files[rel] == nil && !strings.HasPrefix(filepath.Base(rel), ".imgpkg") {
				out = append(out, rel+" (stale)")
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// Write writes files below root and removes stale ones.
func Write(root string, files map[string][]byte) error {
	stale, err := Diff(root, files)
	if err != nil {
		return err
	}
	for _, p := range stale {
		if s, ok := strings.CutSuffix(p, " (stale)"); ok {
			if err := os.Remove(filepath.Join(root, s)); err != nil {
				return err
			}
		}
	}
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
