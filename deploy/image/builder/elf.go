package builder

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
)

// libraryDirs is where the dynamic loader of a Debian amd64 system looks
// for libraries when there is no ld.so.cache (an image has none).
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// fsView resolves paths among a layer's files, following symlinks as the
// kernel would inside the image.
type fsView map[string]File

func newFSView(files []File) fsView {
	v := fsView{}
	for _, f := range files {
		v[path.Clean(f.Path)] = f
	}
	return v
}

// resolve follows symlinks in every component of p; it returns the final
// path and whether it exists.
func (v fsView) resolve(p string) (string, bool) {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
		cur := "/"
		changed := false
		for i, part := range parts {
			next := path.Join(cur, part)
			f, ok := v[next]
			if !ok {
				if v.isImplicitDir(next) {
					cur = next
					continue
				}
				return next, false
			}
			if f.Mode&os.ModeSymlink != 0 {
				target := f.Link
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				changed = true
				break
			}
			cur = next
		}
		if !changed {
			return cur, true
		}
	}
	return p, false
}

// isImplicitDir reports a directory that exists only as a parent of files.
func (v fsView) isImplicitDir(p string) bool {
	for q := range v {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// CheckClosure verifies that, among files, every symlink has a target and
// every dynamically linked ELF file finds its program interpreter and each
// library it needs (DT_NEEDED) the way the loader would. The error lists
// everything missing, so a package list can be fixed in one go.
func CheckClosure(files []File) error {
	v := newFSView(files)
	var problems []string
	for _, f := range files {
		if f.Mode&os.ModeSymlink != 0 {
			if _, ok := v.resolve(f.Path); !ok {
				problems = append(problems, fmt.Sprintf("%s: symlink to %s, which is not in the image", f.Path, f.Link))
			}
			continue
		}
		if !f.Mode.IsRegular() {
			continue
		}
		data, err := fileData(f)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
			continue
		}
		interp, needed, err := elfDeps(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if interp != "" {
			if _, ok := v.resolve(interp); !ok {
				problems = append(problems, fmt.Sprintf("%s: program interpreter %s is not in the image", f.Path, interp))
			}
		}
		for _, lib := range needed {
			found := false
			for _, d := range libraryDirs {
				if _, ok := v.resolve(path.Join(d, lib)); ok {
					found = true
					break
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s: needs %s, which is in no library directory of the image", f.Path, lib))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("the image would not run:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// CheckStatic fails unless the file is an ELF executable without a program
// interpreter or shared libraries (what CGO_ENABLED=0 gives).
func CheckStatic(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	interp, needed, err := elfDeps(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if interp != "" || len(needed) > 0 {
		return fmt.Errorf("%s is dynamically linked (interpreter %q, libraries %v): build it with CGO_ENABLED=0", file, interp, needed)
	}
	return nil
}

func elfDeps(data []byte) (string, []string, error) {
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", nil, err
	}
	defer ef.Close()
	var interp string
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, err := ef.ImportedLibraries()
	if err != nil {
		return "", nil, err
	}
	return interp, needed, nil
}

func fileData(f File) ([]byte, error) {
	if f.Source != "" {
		return os.ReadFile(f.Source)
	}
	return f.Data, nil
}
