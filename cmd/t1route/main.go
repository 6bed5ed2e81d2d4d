// Command t1route keeps a Tier-1 gateway's static routes equal to a
// Kubernetes cluster's node podCIDRs, for routable (non-NAT) pods on vSphere
// with NSX.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	err := newRootCommand(os.Stdout, os.Stderr, os.LookupEnv).Execute()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		os.Exit(1)
	}
}

func newRootCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "t1route",
		Short: "Routable pod networking for Kubernetes on vSphere with NSX",
		Long: `t1route keeps one static route per node podCIDR on a dedicated NSX Tier-1
gateway (next hop: the node), so pod IPs are reachable from outside the
cluster without NAT. Configuration comes from NSXT_* environment variables or
the flags of the same meaning (flags win).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newValidateConfigCommand(stdout, stderr, getenv),
		newControllerCommand(stdout, stderr, getenv),
		newBenchCommand(stdout),
		newAgentCommand(stderr, getenv),
		newEchoCommand(stdout),
		newCheckCommand(stdout, stderr, getenv),
		newGCCommand(stdout, stderr, getenv),
		newRoutesCommand(stdout, stderr, getenv),
		newCleanupControllerCommand(stderr, getenv),
		newRenderCommand(stdout, stderr, getenv),
		newDoctorCommand(stdout, stderr, getenv),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "t1route", version) },
		},
	)
	return root
}
