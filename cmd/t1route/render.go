package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/version"
)

func newRenderCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	o := render.Options{Version: version.Version}
	var createNamespace bool
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
manifests carry their CRD, so one apply installs everything), and may touch
no other.

The namespace is the install's identity: the cluster-scoped objects of an
install into another namespace than t1route-system carry its name, and every
object its app.kubernetes.io/instance label. Another namespace needs
--create-namespace (render creates it: it must not exist) or
--create-namespace=false (it exists; nothing of it changes).

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
			if cmd.Flags().Changed("create-namespace") {
				o.CreateNamespace = &createNamespace
			}
			if !cmd.Flags().Changed("image") {
				if o.Image, err = render.DefaultImage(version.Tag()); err != nil {
					fmt.Fprintf(stderr, "--image: %v\n", err)
					return exitError{2}
				}
			}
			if err := o.Validate(); err != nil {
				fmt.Fprintln(stderr, err)
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
	fl.StringVar(&o.Namespace, "namespace", render.DefaultNamespace, "namespace to install into: the install's identity (a DNS-1123 label)")
	fl.BoolVar(&createNamespace, "create-namespace", true, "render the namespace (labeled pod-security privileged; the uninstall deletes it); false: install into an existing namespace, changing nothing of it (it must admit privileged pods). Required with another --namespace than t1route-system")
	fl.StringVar(&o.Image, "image", "", "t1route image (t1route and t1route-cni in /usr/local/bin): registry/repository:tag, or a digest (repository@sha256:..., repository:tag@sha256:...); never :latest. Default for a release: "+render.DefaultImageRepo+":<its version>; required for a development build")
	fl.StringVar(&o.OVSImage, "ovs-image", "", "node image for the agent pod (t1route, t1route-cni and Open vSwitch; default: --image's repository + \"-node\", same tag, as make image builds it; required when --image is a digest)")
	fl.Int32Var(&o.ControllerPort, "controller-port", render.DefaultControllerPort, "controller metrics (HTTPS, authorized tokens only) and health port; the controller uses host networking, so this port must be free on the nodes")
	fl.StringVar(&o.DatapathType, "datapath-type", render.DatapathTypes[0], "OVS datapath: system (kernel module) or netdev (userspace)")
	fl.BoolVar(&o.AdoptCloudProviderRoutes, "adopt-cloud-provider-routes", false, "run the controller with --adopt-cloud-provider-routes (migrating from the vSphere cloud provider)")
	return cmd
}
