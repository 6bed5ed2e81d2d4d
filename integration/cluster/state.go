//go:build linux

package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// State is what a cluster created on this machine, written to
// <dir>/state.json as it goes, so that Cleanup can remove everything even
// after the process that created it died.
type State struct {
	Dir    string `json:"dir"`
	Prefix string `json:"prefix"` // of namespace names
	Cgroup string `json:"cgroup"` // /t1route-<prefix>
	// Netns are the network namespaces created, in order.
	Netns []string `json:"netns"`
	// HostPathsAbsent are fixed paths (the kubelet's, containerd's, the CNI's)
	// that did not exist on the host before; they must not exist after.
	HostPathsAbsent []string `json:"hostPathsAbsent"`
	// ChainsBefore are the KUBE-* and CNI-* iptables chains this network
	// namespace had before (none, normally): the nodes' are in their own.
	ChainsBefore []string `json:"chainsBefore"`
	// Supervisor is the pid of the process serving the cluster (make cluster).
	Supervisor int `json:"supervisor,omitempty"`

	mu sync.Mutex
}

// StateFile is where a cluster directory keeps its State.
func StateFile(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads a cluster directory's State.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(StateFile(dir))
	if err != nil {
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s: %w", StateFile(dir), err)
	}
	return s, nil
}

func (s *State) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := StateFile(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, StateFile(s.Dir))
}

func (s *State) addNetns(name string) {
	s.mu.Lock()
	s.Netns = append(s.Netns, name)
	s.mu.Unlock()
	s.save() //nolint:errcheck
}

// SetSupervisor records the serving process.
func (s *State) SetSupervisor(pid int) error {
	s.mu.Lock()
	s.Supervisor = pid
	s.mu.Unlock()
	return s.save()
}

// hostPaths are the paths kubelet, containerd and the CNI plugins use
// whatever their flags say, plus those t1route's manifests mount from the
// host. Inside a node they are overlays under the node's directory; on
// the host they must never appear.
var hostPaths = []string{
	"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd",
	"/var/lib/containerd", "/opt/cni", "/etc/cni", "/run/openvswitch", "/var/lib/t1route", "/etc/kubernetes",
	"/usr/libexec/kubernetes", "/run/t1route",
}

func absentHostPaths() []string {
	var absent []string
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			absent = append(absent, p)
		}
	}
	return absent
}

// proc is a process the cluster started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// start starts args[0] with its output in <dir>/logs/<name>.log, in the
// cgroup group (under the cluster's), in its own process group.
func (c *Cluster) start(name, group string, args ...string) (*proc, error) {
	logDir := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }() //nolint:errcheck
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	if err := joinCgroup(c.state.Cgroup+"/"+group, cmd.Process.Pid); err != nil {
		return p, err
	}
	return p, nil
}

// stop asks the process to end (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		select {
		case <-p.done:
		case <-time.After(grace):
			p.cmd.Process.Kill() //nolint:errcheck
			<-p.done
		}
	}
	p.log.Close()
}

// exited reports whether the process has ended, with the end of its log.
func (p *proc) exited() (bool, string) {
	select {
	case <-p.done:
		return true, tailFile(p.log.Name(), 2000)
	default:
		return false, ""
	}
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
