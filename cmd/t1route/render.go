package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/config"
)

func newRenderCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	o := render.Options{Version: version}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print ready-to-apply manifests for the NSXT_* configuration (kubectl apply -f -)",
		Long: `render reads the same NSXT_* variables (or flags) as validate-config, validates them
the same way (exit 2 with one line per problem), and prints the manifests that
install t1route with that configuration: namespace, service accounts,
least-privilege RBAC, the controller Deployment (2 replicas, leader election),
the node agent DaemonSet with Open vSwitch and the CNI install, a ConfigMap for
the settings and a Secret for the NSX credentials. With credentials from a
Secret (NSXT_SECRET_NAMESPACE/NAME) no credentials are rendered, and the
controller may read that one Secret only. With NSXT_MANAGEMENT_CIDR the
controller keeps the management-network guard's ClusterNetworkPolicies (the
manifests carry their CRD, so one apply installs everything).

  t1route render | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := loadConfig(cmd, getenv, stderr)
			if err != nil {
				return err
			}
			if !cfg.PodRoutingEnabled {
				fmt.Fprintln(stderr, "NSXT_POD_ROUTING_ENABLED: is not true; render needs a complete configuration (the controller would idle)")
				return exitError{2}
			}
			if !slices.Contains(render.DatapathTypes, o.DatapathType) {
				fmt.Fprintf(stderr, "--datapath-type %q: use system (kernel module) or netdev (userspace)\n", o.DatapathType)
				return exitError{2}
			}
			out, err := render.Manifests(cfg, s, o)
			if err != nil {
				return err
			}
			if cfg.Auth.Mode != config.AuthSecret {
				fmt.Fprintf(stderr, "note: the output holds the NSX credentials (Secret %s/%s): pipe it to kubectl apply, do not keep it in a file\n", o.Namespace, render.CredentialsName)
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&o.Namespace, "namespace", render.DefaultNamespace, "namespace to install into")
	fl.StringVar(&o.Image, "image", "ghcr.io/t1route/t1route:"+imageTag(), "t1route image (t1route and t1route-cni in /usr/local/bin)")
	fl.StringVar(&o.OVSImage, "ovs-image", "", "node image for the agent pod (t1route, t1route-cni and Open vSwitch; default: --image's repository + \"-node\", same tag, as make image builds it)")
	fl.Int32Var(&o.ControllerPort, "controller-port", render.DefaultControllerPort, "controller metrics and health port; the controller uses host networking, so this port must be free on the nodes")
	fl.StringVar(&o.DatapathType, "datapath-type", render.DatapathTypes[0], "OVS datapath: system (kernel module) or netdev (userspace)")
	fl.BoolVar(&o.AdoptCloudProviderRoutes, "adopt-cloud-provider-routes", false, "run the controller with --adopt-cloud-provider-routes (migrating from the vSphere cloud provider)")
	return cmd
}

func imageTag() string {
	if version == "dev" {
		return "latest"
	}
	return version
}
