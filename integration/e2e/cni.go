//go:build integration && e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// nodeExec runs CNI plugins inside a node's network namespace, the way a
// container runtime on that node would (libcni decides what to run and
// with which environment and stdin).
type nodeExec struct {
	ns string
	version.PluginDecoder
}

func (e *nodeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, pluginPath)
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		var cniErr types.Error
		if json.Unmarshal(out.Bytes(), &cniErr) == nil && cniErr.Msg != "" {
			return nil, &cniErr
		}
		return nil, fmt.Errorf("%s: %w: %s%s", filepath.Base(pluginPath), err, out.String(), errb.String())
	}
	return out.Bytes(), nil
}

func (e *nodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// runtime is one node's container runtime, as far as networking goes.
type cniRuntime struct {
	cni     *libcni.CNIConfig
	confDir string
}

func newCNIRuntime(nodeNS, binDir, confDir, cacheDir string) *cniRuntime {
	return &cniRuntime{cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, &nodeExec{ns: nodeNS}), confDir: confDir}
}

func (r *cniRuntime) conf() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(r.confDir, []string{".conflist"})
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no conflist in %s (%v)", r.confDir, err)
	}
	return libcni.ConfListFromFile(files[0])
}

func rtConf(containerID, podNetns, pod string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: "/var/run/netns/" + podNetns, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", pod}, {"K8S_POD_INFRA_CONTAINER_ID", containerID}}}
}

func (r *cniRuntime) add(ctx context.Context, containerID, podNetns, pod string) (types.Result, error) {
	list, err := r.conf()
	if err != nil {
		return nil, err
	}
	return r.cni.AddNetworkList(ctx, list, rtConf(containerID, podNetns, pod))
}

func (r *cniRuntime) check(ctx context.Context, containerID, podNetns, pod string) error {
	list, err := r.conf()
	if err != nil {
		return err
	}
	return r.cni.CheckNetworkList(ctx, list, rtConf(containerID, podNetns, pod))
}

func (r *cniRuntime) del(ctx context.Context, containerID, podNetns, pod string) error {
	list, err := r.conf()
	if err != nil {
		return err
	}
	return r.cni.DelNetworkList(ctx, list, rtConf(containerID, podNetns, pod))
}
