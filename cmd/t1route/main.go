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

	"github.com/t1route/t1route/podroute/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// userAgent names t1route to the APIs it calls.
func userAgent() string { return "t1route/" + version }

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

// loadConfig reads a command's NSXT_* configuration (flags win over the
// environment). On problems it prints one line each and returns exit status 2.
func loadConfig(cmd *cobra.Command, getenv func(string) (string, bool), stderr io.Writer) (config.Config, config.Settings, error) {
	s := config.Settings{Flags: cmd.Flags(), Getenv: getenv}
	cfg, problems := config.Load(s)
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "invalid configuration: %d problem(s)\n", len(problems))
		for _, p := range problems {
			fmt.Fprintln(stderr, p.String())
		}
		return cfg, s, exitError{2}
	}
	return cfg, s, nil
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
		newAgentCommand(stderr, getenv),
		newEchoCommand(stdout),
		newCheckCommand(stdout, stderr, getenv),
		newGCCommand(stdout, stderr, getenv),
		newRoutesCommand(stdout, stderr, getenv),
		newCleanupControllerCommand(stderr, getenv),
		newRenderCommand(stdout, stderr, getenv),
		newDoctorCommand(stdout, stderr, getenv),
		newGetCommand(stdout, stderr),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "t1route", version) },
		},
	)
	return root
}
