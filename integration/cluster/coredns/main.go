// Command coredns is CoreDNS (github.com/coredns/coredns, the version go.mod pins) with the plugins
// make cluster's Corefile uses: the cluster DNS server (kube-dns) of the local cluster, built from the
// module proxy like the Kubernetes binaries. The upstream main links every plugin (clouds' SDKs among
// them); this one links only what a cluster's DNS needs, as CoreDNS documents for custom builds.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
