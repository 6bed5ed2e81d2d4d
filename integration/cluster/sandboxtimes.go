//go:build linux

package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// SandboxTiming is what containerd logged of starting one pod's sandbox.
type SandboxTiming struct {
	Pod     string        // namespace/name
	Sandbox time.Duration // RunPodSandbox: network namespace, CNI ADD, the pause container
	// CNIAdd is from containerd's "begin cni setup" to its "cni result":
	// every plugin of the conflist run by libcni as the kubelet has it run,
	// process starts and the agent's flow sync included. Zero if not logged.
	CNIAdd time.Duration
}

// SandboxTimings reads every node's containerd log (Config.ContainerdDebug
// must be set for the CNI ADD lines) and returns the sandboxes started, in
// the order they were.
func (c *Cluster) SandboxTimings() ([]SandboxTiming, error) {
	var all []SandboxTiming
	for _, n := range c.Nodes {
		f, err := os.Open(filepath.Join(c.Dir, "logs", n.Name+"-containerd.log"))
		if err != nil {
			return nil, err
		}
		t, err := parseSandboxTimings(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, t...)
	}
	return all, nil
}

// The CRI service's log lines around RunPodSandbox (containerd 1.6).
var (
	runSandbox    = regexp.MustCompile(`^RunPodSandbox for &PodSandboxMetadata\{Name:([^,]*),Uid:[^,]*,Namespace:([^,]*),`)
	sandboxReturn = regexp.MustCompile(`\} returns sandbox id "([0-9a-f]+)"$`)
)

// parseSandboxTimings reads a containerd log in JSON format. Lines that
// are not JSON, and sandboxes that did not start, are passed over.
func parseSandboxTimings(r io.Reader) ([]SandboxTiming, error) {
	type line struct {
		Msg     string    `json:"msg"`
		Time    time.Time `json:"time"`
		Sandbox string    `json:"podsandboxid"`
	}
	begun := map[string]time.Time{}    // pod -> RunPodSandbox called
	cniBegun := map[string]time.Time{} // sandbox ID -> begin cni setup
	cniAdd := map[string]time.Duration{}
	var out []SandboxTiming
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.ReadBytes('\n')
		var l line
		if len(b) > 0 && json.Unmarshal(b, &l) == nil && !l.Time.IsZero() {
			switch {
			case l.Msg == "begin cni setup" && l.Sandbox != "":
				cniBegun[l.Sandbox] = l.Time
			case len(l.Msg) > 12 && l.Msg[:12] == "cni result: " && l.Sandbox != "":
				if t, ok := cniBegun[l.Sandbox]; ok {
					cniAdd[l.Sandbox] = l.Time.Sub(t)
				}
			default:
				if m := runSandbox.FindStringSubmatch(l.Msg); m != nil {
					pod := m[2] + "/" + m[1]
					if id := sandboxReturn.FindStringSubmatch(l.Msg); id != nil {
						if t, ok := begun[pod]; ok {
							out = append(out, SandboxTiming{Pod: pod, Sandbox: l.Time.Sub(t), CNIAdd: cniAdd[id[1]]})
							delete(begun, pod)
						}
					} else {
						begun[pod] = l.Time
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
