//go:build linux

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cniPlugins are the reference plugins (containernetworking/plugins, the
// version go.mod pins) the cluster builds: loopback for every node, ptp
// and host-local for InstallSmokeCNI.
var cniPlugins = []string{"github.com/containernetworking/plugins/plugins/main/loopback",
	"github.com/containernetworking/plugins/plugins/main/ptp", "github.com/containernetworking/plugins/plugins/ipam/host-local"}

// InstallSmokeCNI gives every node a minimal network plugin without
// t1route: the reference ptp and host-local plugins with the node's
// podCIDR, written where a CNI's installer would (/opt/cni/bin,
// /etc/cni/net.d in the node). It proves the nodes run pods before
// t1route is installed; the nodes then turn Ready. Pods get an address
// and a route to their node, nothing more (no routes between nodes).
func (c *Cluster) InstallSmokeCNI(ctx context.Context) error {
	plugins := filepath.Join(c.Dir, "cni-plugins")
	for _, n := range c.Nodes {
		cidr, err := c.waitPodCIDR(ctx, n.Name)
		if err != nil {
			return err
		}
		conf := filepath.Join(plugins, n.Name+".conflist")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "smoke", "plugins": [
  {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
`, cidr)), 0o644); err != nil {
			return err
		}
		script := fmt.Sprintf("mkdir -p /etc/cni/net.d && cp %s/ptp %s/host-local /opt/cni/bin/ && cp %s /etc/cni/net.d/90-smoke.conflist",
			plugins, plugins, conf)
		if out, err := exec.CommandContext(ctx, n.nsenter("sh", "-c", script)[0], n.nsenter("sh", "-c", script)[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: install the smoke CNI: %w: %s", n.Name, err, out)
		}
	}
	return nil
}

// waitPodCIDR waits until kube-controller-manager has given the node a podCIDR.
func (c *Cluster) waitPodCIDR(ctx context.Context, node string) (string, error) {
	var cidr string
	err := waitFor(ctx, 60*time.Second, node+" podCIDR", func() (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		cidr = n.Spec.PodCIDR
		return cidr != "", nil
	})
	return cidr, err
}
