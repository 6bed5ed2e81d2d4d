//go:build linux

package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Every process the cluster starts lives in one cgroup subtree,
// /t1route-<prefix>/…, in every hierarchy: each kubelet gets its own
// cgroupRoot there (two kubelets sharing /kubepods would remove each
// other's pod cgroups), and cleanup kills exactly the subtree's processes
// (containerd's shims and the containers included, which no parent waits
// for) and removes its directories.

// cgroupMounts lists the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	hier, err := cgroupMountOptions()
	if err != nil {
		return nil, err
	}
	if len(hier) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted")
	}
	mounts := make([]string, len(hier))
	for i, h := range hier {
		mounts[i] = h.path
	}
	return mounts, nil
}

type cgroupHierarchy struct{ path, fstype, opts string }

// cgroupMountOptions lists each hierarchy's mount point, type and the
// options that name its controllers, to mount the same hierarchy again.
func cgroupMountOptions() ([]cgroupHierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupHierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x != "-" || i+3 >= len(fields) || (fields[i+1] != "cgroup" && fields[i+1] != "cgroup2") {
				continue
			}
			var opts []string
			for _, o := range strings.Split(fields[i+3], ",") {
				if o != "rw" && o != "ro" {
					opts = append(opts, o)
				}
			}
			o := strings.Join(opts, ",")
			if o == "" {
				o = "rw"
			}
			out = append(out, cgroupHierarchy{fields[4], fields[i+1], o})
		}
	}
	return out, sc.Err()
}

// makeCgroup creates path (e.g. /t1route-ab12/node-a) in every hierarchy;
// cpuset levels get their parent's CPUs and memory nodes, without which no
// process could join them.
func makeCgroup(path string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := m
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(b)) == "" {
					v, err := os.ReadFile(filepath.Join(parent, f))
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
						return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
					}
				}
			}
		}
	}
	return nil
}

// joinCgroup moves a process into path in every hierarchy.
func joinCgroup(path string, pid int) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := os.WriteFile(filepath.Join(m, path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move %d into %s: %w", pid, filepath.Join(m, path), err)
		}
	}
	return nil
}

// cgroupPids lists the processes in path's subtree, in any hierarchy.
func cgroupPids(path string) []int {
	mounts, _ := cgroupMounts()
	seen := map[int]bool{}
	for _, m := range mounts {
		filepath.WalkDir(filepath.Join(m, path), func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}

// killCgroup kills every process in path's subtree and waits until none is
// left (or timeout).
func killCgroup(path string, timeout time.Duration) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range mounts {
			// cgroup v2 kills a whole subtree at once, forks included.
			os.WriteFile(filepath.Join(m, path, "cgroup.kill"), []byte("1"), 0o644) //nolint:errcheck
		}
		pids := cgroupPids(path)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still in cgroup %s after %s: %v", path, timeout, pids)
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL) //nolint:errcheck
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroup removes path's subtree in every hierarchy, deepest first.
func removeCgroup(path string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		var dirs []string
		filepath.WalkDir(filepath.Join(m, path), func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			// A cgroup whose last process just died can be busy for a moment.
			var err error
			for try := 0; try < 50; try++ {
				if err = os.Remove(dirs[i]); err == nil || errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.EBUSY) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupExists reports which hierarchies still hold path.
func cgroupExists(path string) []string {
	mounts, _ := cgroupMounts()
	var left []string
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, path)); err == nil {
			left = append(left, filepath.Join(m, path))
		}
	}
	return left
}
