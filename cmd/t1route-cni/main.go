// Command t1route-cni is t1route's CNI plugin. The container runtime runs it
// with CNI_COMMAND and the network configuration on stdin; the t1route agent
// installs it and its conflist on every node.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/t1route/t1route/podroute/node/cni"
)

var version = "dev"

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.Versions, "t1route-cni "+version+": routable pods on an OVS bridge, no NAT")
}
